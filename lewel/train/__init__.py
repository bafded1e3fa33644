"""Training: the loop, its data, monitoring and the kNN / linear evaluations."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the run stopped and the checkpoints on disk are the last good ones."""
