"""``export-onnx``: a trained checkpoint becomes a versioned, validated ONNX model bundle."""
