"""Generated datasets that need no download: the ``blobs`` example and its registration."""
