"""Serving zoo artifacts on Ray Serve (the ``serve`` extra): ``codec`` turns HTTP bodies into images and detections
into JSON (no Ray), ``app`` is the Serve deployment, ``config`` writes a config for ``serve deploy``, ``bench``
measures served against in-process calls. Nothing here is imported by ``import zoo``."""
