"""Your own data: sequences from HDF5, ``.npy``, ``.npz`` or PredRNN ``.npz`` files described by a
TOML file (README 'Your own data'): the description, axis layouts, format readers, splits,
normalisation, loading, and registering a TOML dataset."""
