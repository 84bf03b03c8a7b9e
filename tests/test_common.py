"""scikit-learn's estimator checks on a tiny configuration."""

from conftest import TINY
from sklearn.utils.estimator_checks import parametrize_with_checks

from skvqad import VQVAEAnomalyDetector
from skvqad.baselines import KNNDistance, PCAReconstructionError
from skvqad.preprocessing import Grayscale, ImageResizer, IntensityScaler

# Every entry says why the check cannot pass; the aim is for this to stay empty.
EXPECTED_FAILED_CHECKS: dict[str, str] = {}


@parametrize_with_checks(
    [
        VQVAEAnomalyDetector(**dict(TINY, batch_size=64, max_epochs=1, device="auto")),
        IntensityScaler(),
        Grayscale(),
        ImageResizer(size=(3, 5)),
        KNNDistance(n_neighbors=2),
        PCAReconstructionError(random_state=0),
    ],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
