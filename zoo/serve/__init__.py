"""Serving zoo artifacts on Ray Serve (the ``serve`` extra): ``codec`` turns HTTP bodies into images and detections
into JSON (no Ray), ``app`` is the Serve deployment, ``config`` writes a config for ``serve deploy``, ``bench``
measures served against in-process calls. Nothing here is imported by ``import zoo``."""


def require_ray(what: str) -> None:
    """A ZooError naming the extra when Ray (or Serve) is missing, instead of an ImportError traceback."""
    try:
        import ray.serve  # noqa: F401
    except ImportError as e:
        from ..errors import ZooError
        raise ZooError(f"{what} needs Ray Serve ({e}): pip install 'zoo[serve]'") from None
