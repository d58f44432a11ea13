"""Training-stage defenses: trainers that wrap the training loop so that poison matters less
(partition ensembles with certificates, RONI, anti-backdoor learning, trimmed loss, DP-SGD)."""

from .abl import AntiBackdoorLearning
from .dp_sgd import DPSGD
from .roni import RONI
from .trimmed_loss import TrimmedLoss
