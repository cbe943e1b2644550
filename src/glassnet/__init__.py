"""glassnet: a convolutional neural network library built from the math up."""
