"""What the numbers say, before any model: metric deviations, the change point, the statistical
baseline, the evidence features of every candidate and the evidence text. Reads ``models.domain``."""

from models.signals._baseline import BaselineEntry, baro_rank
from models.signals._detection import Detection, detect, detect_frame
from models.signals._frame import MetricFrame, deviations, metric_frame

__all__ = [
    "BaselineEntry",
    "Detection",
    "MetricFrame",
    "baro_rank",
    "detect",
    "detect_frame",
    "deviations",
    "metric_frame",
]
