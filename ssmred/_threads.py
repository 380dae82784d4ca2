r"""Thread discipline for ssmred's numerical kernels: one BLAS thread for small and medium problems.

numpy, scipy and slycot each load their own OpenBLAS, and every one of these thread pools, left at its
default size, lets its worker threads spin-wait for new work after each parallel region. A kernel that
alternates between them (a numpy product, a scipy Schur form, a SLICOT solver) then runs while the
other pools' idle workers occupy the cores: on a 2-core machine a 100-state balanced truncation took
2x longer with the default pools, SLICOT's own AB09AD at n = 1000 6x longer, and a 256-state LRU
layer's Hankel singular values 4-5x longer than with one thread. Small kernels gain nothing from
threads anyway.

ssmred therefore limits the BLAS pools it uses **during its own calls**, by problem size, and restores
the previous settings on return (the user's global configuration is never changed beyond the call):

* ``"auto"`` (default): one BLAS thread for systems with fewer than :data:`AUTO_MULTITHREAD_STATES`
  states; larger problems (dominated by level-3 BLAS: Schur forms, SVDs, products) run with whatever
  the pools are set to.
* ``"inherit"``: never touch the thread pools (your own ``OPENBLAS_NUM_THREADS`` / threadpoolctl
  settings apply unchanged).
* a positive integer ``k``: exactly ``k`` BLAS threads inside every ssmred kernel.

The policy comes from the environment variable ``SSMRED_BLAS_THREADS`` (read at import) and can be
changed for a block of code with :func:`blas_threads`. The limits are process-wide while a kernel runs
(BLAS thread pools are process-wide); concurrent ssmred calls from several Python threads share one
limit, set by the first to enter and restored by the last to leave.

Needs ``threadpoolctl`` (a dependency of ssmred); without it every policy behaves like ``"inherit"``.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, Literal, TypeVar

__all__ = ["AUTO_MULTITHREAD_STATES", "BlasPolicy", "blas_threads", "current_policy", "kernel", "limit_for"]

BlasPolicy = Literal["auto", "inherit"] | int

#: ``"auto"``: problems with at least this many states keep the thread pools' own setting.
AUTO_MULTITHREAD_STATES = 2000

_ENV = "SSMRED_BLAS_THREADS"


def _parse(value: object, *, source: str) -> BlasPolicy:
    if isinstance(value, bool):
        raise ValueError(f"{source} must be 'auto', 'inherit' or a positive integer; got {value!r}")
    if isinstance(value, int):
        if value < 1:
            raise ValueError(f"{source} must be 'auto', 'inherit' or a positive integer; got {value!r}")
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("auto", "inherit"):
            return text  # type: ignore[return-value]
        if text.isdigit() and int(text) >= 1:
            return int(text)
    raise ValueError(f"{source} must be 'auto', 'inherit' or a positive integer; got {value!r}")


def _policy_from_env() -> BlasPolicy:
    raw = os.environ.get(_ENV)
    if raw is None or raw.strip() == "":
        return "auto"
    try:
        return _parse(raw, source=f"environment variable {_ENV}")
    except ValueError:
        import warnings

        warnings.warn(f"ignoring {_ENV}={raw!r}: use 'auto', 'inherit' or a positive integer", stacklevel=2)
        return "auto"


_DEFAULT: BlasPolicy = _policy_from_env()
_OVERRIDE: contextvars.ContextVar[BlasPolicy | None] = contextvars.ContextVar("ssmred_blas_threads", default=None)


def current_policy() -> BlasPolicy:
    """The policy in force here: the innermost :func:`blas_threads` block, else ``SSMRED_BLAS_THREADS``.

    Returns
    -------
    str or int
        ``"auto"``, ``"inherit"`` or a thread count.

    Examples
    --------
    >>> with blas_threads(3):
    ...     current_policy()
    3
    """
    override = _OVERRIDE.get()
    return _DEFAULT if override is None else override


@contextlib.contextmanager
def blas_threads(policy: BlasPolicy) -> Iterator[None]:
    """Use another BLAS thread policy for ssmred's kernels inside a ``with`` block.

    Parameters
    ----------
    policy
        ``"auto"`` (one thread below :data:`AUTO_MULTITHREAD_STATES` states, the pools' own setting
        above), ``"inherit"`` (ssmred never changes the thread pools) or a positive integer (exactly
        that many BLAS threads inside every ssmred call).

    Yields
    ------
    None
        The block runs with the policy; the previous one is restored afterwards.

    Raises
    ------
    ValueError
        For any other value.

    Examples
    --------
    >>> import ssmred
    >>> with ssmred.blas_threads("inherit"):   # e.g. a dedicated many-core machine, pools set by you
    ...     hsv = ssmred.hankel_singular_values(ssmred.random_stable(4, rng=0))
    >>> hsv.shape
    (4,)
    """
    token = _OVERRIDE.set(_parse(policy, source="policy"))
    try:
        yield
    finally:
        _OVERRIDE.reset(token)


# ------------------------------------------------------------------------------------------ pools
_lock = threading.Lock()
_active = 0
_target_now: int | None = None
_saved: list[tuple[Any, int]] = []
_controller_cache: dict[bool, Any] = {}


def _blas_libs() -> list[Any]:
    """Threadpoolctl controllers of the BLAS libraries loaded now (cached; rescanned once slycot loads)."""
    key = "slycot" in sys.modules
    libs = _controller_cache.get(key)
    if libs is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - threadpoolctl is a dependency
            libs = []
        else:
            libs = [lib for lib in ThreadpoolController().lib_controllers if lib.user_api == "blas"]
        _controller_cache[key] = libs
    return libs


def _target(n_states: int, policy: BlasPolicy) -> int | None:
    if policy == "inherit":
        return None
    if policy == "auto":
        return 1 if n_states < AUTO_MULTITHREAD_STATES else None
    return int(policy)


@contextlib.contextmanager
def limit_for(n_states: int) -> Iterator[None]:
    """Apply the current policy to the BLAS pools for a kernel on ``n_states`` states (nested: outermost wins).

    Parameters
    ----------
    n_states
        Size of the problem (number of states).

    Yields
    ------
    None
        The kernel runs with the limit; the previous thread counts are restored afterwards.

    Examples
    --------
    >>> with limit_for(10):
    ...     pass
    """
    global _active, _target_now
    target = _target(n_states, current_policy())
    with _lock:
        if _active == 0:
            _saved.clear()
            _target_now = target
            if target is not None:
                _apply(_blas_libs(), target)
        _active += 1
    try:
        yield
    finally:
        _leave()


def _apply(libs: list[Any], target: int) -> None:
    """Set ``target`` threads on the libraries not handled yet, remembering their previous setting."""
    seen = {id(lib) for lib, _ in _saved}
    for lib in libs:
        if id(lib) in seen:
            continue
        before = lib.num_threads
        if before != target:
            lib.set_num_threads(target)
            _saved.append((lib, before))


def library_loaded() -> None:
    """Call after importing a module that brings its own BLAS (slycot): limit it too if a kernel is running.

    Examples
    --------
    >>> library_loaded()
    """
    with _lock:
        if _active and _target_now is not None:
            _apply(_blas_libs(), _target_now)


@contextlib.contextmanager
def _nested() -> Iterator[None]:
    """Count a kernel nested in a running one (no library calls): the last one to leave restores."""
    global _active
    with _lock:
        _active += 1
    try:
        yield
    finally:
        _leave()


def _leave() -> None:
    global _active, _target_now
    with _lock:
        _active -= 1
        if _active == 0:
            for lib, before in _saved:
                lib.set_num_threads(before)
            _saved.clear()
            _target_now = None


F = TypeVar("F", bound=Callable[..., Any])


def _default_size(*args: Any, **kwargs: Any) -> int:
    sys_ = args[0] if args else next(iter(kwargs.values()), None)
    A = getattr(sys_, "A", None)
    return int(A.shape[0]) if A is not None and getattr(A, "ndim", 0) == 2 else 0


def kernel(size: Callable[..., int] = _default_size) -> Callable[[F], F]:
    """Decorator: run the function under :func:`limit_for` with the size computed from its arguments.

    Parameters
    ----------
    size
        Called with the function's arguments; returns the number of states (default: ``args[0].A``).

    Returns
    -------
    Callable
        The decorator.

    Examples
    --------
    >>> @kernel()
    ... def f(sys):
    ...     return 1
    >>> f(None)
    1
    """

    def wrap(func: F) -> F:
        @functools.wraps(func)
        def inner(*args: Any, **kwargs: Any) -> Any:
            if _active:  # nested inside another kernel (any thread): its limit already applies
                with _nested():
                    return func(*args, **kwargs)
            try:
                n = size(*args, **kwargs)
            except Exception:  # invalid input: the function itself reports it
                n = 0
            with limit_for(n):
                return func(*args, **kwargs)

        return inner  # type: ignore[return-value]

    return wrap
