"""Training-stage defenses: trainers that wrap the training loop so that poison matters less
(partition ensembles with certificates, RONI, anti-backdoor learning, trimmed loss, DP-SGD)."""
