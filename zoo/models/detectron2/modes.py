"""Which exporter is running the model: its loops over detections take another form under torch.export.

(No ``from __future__ import annotations`` here: TorchScript, which compiles the callers, cannot read a string
``bool`` annotation of an unused function.)"""
import torch


@torch.jit.unused
def exporting() -> bool:
    """Whether torch.export is tracing the model: its loops over detections are then ``torch.while_loop``s (call it
    after ``not torch.jit.is_scripting()``: TorchScript compiles no ``torch.compiler`` call)."""
    return torch.compiler.is_exporting()


def fresh(value: torch.Tensor, bound: int) -> int:
    """A size held by a 0-d integer tensor, read back as a fresh symbol under torch.export (``.item()``) and checked to
    lie in [1, ``bound``]: what follows is written in terms of that one symbol."""
    size = value.item()
    torch._check(size >= 1)
    torch._check(size <= bound)
    return size


def loop_over(count: int, body, state: tuple) -> tuple:
    """``state = body(i, *state)`` for i in range(count), as a ``torch.while_loop`` (a Python loop would stop
    torch.export at a data-dependent count). The count goes in as a tensor (a loop takes no symbol as input), and no two
    tensors of ``state`` or of what ``body`` reads may alias each other. Returns the final state."""
    end = torch.scalar_tensor(count, dtype=torch.int64, device=state[0].device)
    start = torch.zeros((), dtype=torch.int64, device=state[0].device)
    return tuple(torch.while_loop(lambda i, *s: i < end, lambda i, *s: (i + 1, *body(i, *s)), (start, *state))[1:])
