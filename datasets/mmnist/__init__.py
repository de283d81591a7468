"""Moving MNIST: the generator, the embedded glyph digits, the MNIST files, the dataset builder
and its registrations (``mmnist``, ``mmnist3``)."""
