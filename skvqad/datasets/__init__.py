"""Load image anomaly-detection data sets as numpy arrays.

scikit-learn style loaders (``fetch_*`` downloads, ``load_*`` reads a folder
the user already has) that return a :class:`sklearn.utils.Bunch` of uint8
images ready for :class:`~skvqad.VQVAEAnomalyDetector`:

- :func:`fetch_cifar10`: the official CIFAR-10 python release, downloaded once;
- :func:`load_image_folder`: any ``root/<split>/<class>/*.png`` tree;
- :func:`load_mvtec_ad`: the MVTec AD layout, with pixel masks;
- :func:`load_ucsd_ped`: the UCSD Anomaly Dataset (Ped1, Ped2), with frame
  labels and pixel masks;
- :func:`load_folder_with_masks`: normal images and defective images with
  masks beside them (e.g. the Magnetic Tile Defect set).

Images are ``(n, H, W)`` for grayscale and ``(n, H, W, 3)`` for RGB.
Pixel masks are boolean ``(n, H, W)``, True on defective pixels. Test
labels are a boolean ``anomalous`` array: note that the detector's own
convention is the opposite sign (``y == 1`` for *normal* images, as
``predict`` returns), so pass ``np.where(anomalous, -1, 1)`` as ``y``.

Reading image files needs Pillow, an optional dependency
(``pip install "skvqad[images]"``); it is imported only by the functions that
read images, and :func:`fetch_cifar10` does not need it.
"""

from ._download import get_data_home
from ._io import IMAGE_EXTENSIONS
from .cifar10 import CIFAR10_MD5, CIFAR10_URL, fetch_cifar10
from .folders import image_folder_to_npy, load_folder_with_masks, load_image_folder
from .mvtec import load_mvtec_ad
from .ucsd import load_ucsd_ped

__all__ = [
    "CIFAR10_MD5",
    "CIFAR10_URL",
    "IMAGE_EXTENSIONS",
    "fetch_cifar10",
    "get_data_home",
    "image_folder_to_npy",
    "load_folder_with_masks",
    "load_image_folder",
    "load_mvtec_ad",
    "load_ucsd_ped",
]
