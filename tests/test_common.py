"""scikit-learn's estimator checks on a tiny configuration."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skvqad import VQVAEAnomalyDetector
from skvqad.preprocessing import Grayscale, ImageResizer, IntensityScaler

TINY = dict(
    n_embeddings=8,
    embedding_dim=4,
    hidden_channels=8,
    n_residual_layers=1,
    max_epochs=2,
    batch_size=64,
    random_state=0,
)

# Every entry says why the check cannot pass; the aim is for this to stay empty.
EXPECTED_FAILED_CHECKS: dict[str, str] = {}


@parametrize_with_checks(
    [VQVAEAnomalyDetector(**TINY), IntensityScaler(), Grayscale(), ImageResizer(size=(3, 5))],
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
