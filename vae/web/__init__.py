"""What the browser is sent of a model: the decoder's weights and the map's inverse grid, as plain arrays."""
