"""Background work: the camera loop (QThread) and jobs on the QThreadPool, each with result signals."""
