"""What every dataset is made of: names, sequence data, clip and window datasets, the eval-clip
cache, ``.npy`` / ``.npz`` reading and file digests. Nothing here knows a particular dataset."""
