"""The published datasets, one module each (mfmnist, kth, sevir, taxibj, weatherbench), what they
share, and fetching and verifying the files that have a stable public URL."""
