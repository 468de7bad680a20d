"""A callback that kills a training run mid-epoch, for the resume tests."""


class Interrupt(Exception):
    """Raised by :class:`CrashAt`."""


class CrashAt:
    """Raise in the middle of epoch ``epoch`` (0-based), after ``step`` iterations, like a killed job."""

    def __init__(self, epoch, step):
        self.epoch, self.step = epoch, step

    def on_step_end(self, info):
        if (info["epoch"], info["step"]) == (self.epoch, self.step):
            raise Interrupt
