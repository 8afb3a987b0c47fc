"""One trainer for every architecture (see :mod:`echolib.train.loop`)."""
