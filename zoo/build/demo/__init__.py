"""The demo detector: synthetic shapes scenes (shapes.py), a tiny Faster R-CNN (detector.py), its reproducible
training and shipped checkpoint (train.py), and `zoo demo` (run.py)."""
