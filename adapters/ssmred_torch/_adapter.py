r"""The layer-family protocol: one adapter per SSM layer type, found along the MRO, and one layer discovery.

Every generic module of ``ssmred_torch`` (reduction, controller, optimizer surgery, checkpoints,
regulariser) sees an SSM layer only through its :class:`AbstractAdapter`:

* :meth:`~AbstractAdapter.systems` — the batched diagonal discrete-time systems CompreSSM analyses,
  :math:`(\mathrm{diag}\lambda_g, B_g, C_g)` for ``g = 1..G`` (``G = 1`` for a MIMO layer such as the
  LRU or S5, ``G = H`` for per-channel SISO layers such as S4D);
* :meth:`~AbstractAdapter.write_back_` — put reduced diagonal systems (:class:`ReducedSystems`) back
  into the layer's own parameters, or raise :class:`ReductionRefused`;
* :meth:`~AbstractAdapter.to_statespace` / :meth:`~AbstractAdapter.from_statespace` — conversion
  to and from :class:`ssmred.StateSpace` (``exact=True``: the layer's real input/output map);
* :meth:`~AbstractAdapter.state_parameters`, :meth:`~AbstractAdapter.state_sizes`,
  :meth:`~AbstractAdapter.resize_` — which parameters carry a state axis, for optimizer surgery,
  checkpoints and DDP; :meth:`~AbstractAdapter.project_moments_` — optional moment projection.

The state layout is declared, not coded: an adapter names its state-indexed parameters and their
state axis in :attr:`~AbstractAdapter.state_axes` and the layer attribute holding its state size in
:attr:`~AbstractAdapter.state_size_attribute`; the default ``state_parameters``, ``state_sizes`` and
``resize_`` read these (a family overrides them only where its layout depends on the layer's settings,
as Mamba's ``modal_shared`` rule does).

Adding a layer family is one file with the ``nn.Module`` and its final adapter, plus
``register_adapter(MyAdapter())``. :func:`adapter_for` walks the MRO, so subclasses of a registered
layer are handled by its adapter; :func:`ssm_layers` is the one function that discovers the SSM
layers of a model. :func:`replace_parameter_` is the one place where a parameter changes shape.

The values the protocol exchanges (:class:`DiagonalSystems`, :class:`ReducedSystems`,
:class:`StateMap`, :class:`ReductionRefused`, ``OUTPUT_GAIN``) live in :mod:`ssmred_torch._systems`
and are re-exported here.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any, ClassVar, Generic, NamedTuple, TypeVar

from ssmred._require import require

require("torch")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from ssmred.statespace import StateSpace  # noqa: E402
from ssmred_torch._systems import (  # noqa: E402  (the protocol's value types, re-exported)
    OUTPUT_GAIN,
    DiagonalSystems,
    OutputRule,
    ReducedSystems,
    ReductionRefused,
    StateMap,
)

__all__ = [
    "OUTPUT_GAIN",
    "AbstractAdapter",
    "DiagonalSystems",
    "OutputRule",
    "ReducedSystems",
    "ReductionRefused",
    "SSMLayer",
    "StateMap",
    "adapter_for",
    "register_adapter",
    "registered_adapters",
    "replace_parameter_",
    "ssm_layers",
]

LayerT = TypeVar("LayerT", bound=nn.Module)


class AbstractAdapter(abc.ABC, Generic[LayerT]):
    """The protocol between one SSM layer family and ssmred (see the module docstring).

    Concrete adapters are final, hold all their fields, and are registered with :func:`register_adapter`.
    Besides the class variables below, an adapter declares its state layout:

    ``state_axes: ClassVar[Mapping[str, int]]``
        Every state-indexed parameter (name as in ``layer.named_parameters()``) and its state axis.
        A declared name that the layer holds as a buffer (a fixed, not trained, tensor such as S4D's
        ``B`` with ``learn_B=False``) is left out by :meth:`state_parameters`.
    ``state_size_attribute: ClassVar[str]``
        The layer attribute holding its one state size, the size that the layer's own
        ``resize_(size)`` takes (default ``"n_states"``).
    """

    layer_type: ClassVar[type[nn.Module]]
    #: State-indexed parameter name -> its state axis (see the class docstring).
    state_axes: ClassVar[Mapping[str, int]]
    #: The layer attribute with its state size; ``layer.resize_`` takes that size.
    state_size_attribute: ClassVar[str] = "n_states"
    #: ``False`` for selective (input-dependent) layers, whose ``systems`` is a documented LTI surrogate.
    time_invariant: ClassVar[bool] = True
    #: Parameters trained in the SSM optimizer group (learning-rate factor, no weight decay; SPEC §6).
    dynamics_parameters: ClassVar[tuple[str, ...]] = ()
    #: Whether :meth:`project_moments_` is implemented (the "project" optimizer policy).
    supports_projection: ClassVar[bool] = False

    @abc.abstractmethod
    def to_statespace(self, layer: LayerT, *, exact: bool = False) -> StateSpace:
        """The layer's linear system as a :class:`ssmred.StateSpace`.

        Parameters
        ----------
        layer
            The layer.
        exact
            ``True``: a realization whose transfer function is the layer's real input/output map;
            ``False``: the system CompreSSM analyses (the adapter documents the relation).

        Returns
        -------
        StateSpace
            The system.
        """

    @abc.abstractmethod
    def from_statespace(self, sys: StateSpace, *, like: LayerT) -> LayerT:
        """A new layer realising ``sys`` (the inverse of ``to_statespace(..., exact=False)``).

        Parameters
        ----------
        sys
            The system.
        like
            Template layer (hyper-parameters, dtype, device).

        Returns
        -------
        nn.Module
            The new layer.
        """

    @abc.abstractmethod
    def systems(self, layer: LayerT) -> DiagonalSystems:
        """The diagonal systems CompreSSM analyses (differentiable: no ``no_grad`` inside).

        Parameters
        ----------
        layer
            The layer.

        Returns
        -------
        DiagonalSystems
            Complex128 tensors on the layer's device.
        """

    @abc.abstractmethod
    def write_back_(self, layer: LayerT, reduced: ReducedSystems) -> StateMap:
        """Write reduced diagonal systems into the layer's parameters, in place.

        Parameters
        ----------
        layer
            The layer (left untouched when refusing).
        reduced
            The reduced systems, one per system of :meth:`systems`.

        Returns
        -------
        StateMap
            The map from old to new states.

        Raises
        ------
        ReductionRefused
            If the reduced systems cannot be represented by the layer's parameters.
        """

    def state_parameters(self, layer: LayerT) -> Mapping[str, int]:
        """The layer's parameters that have a state axis, and that axis (from :attr:`state_axes`).

        Parameters
        ----------
        layer
            The layer.

        Returns
        -------
        Mapping
            Parameter name (as in ``layer.named_parameters()``) to axis: the declared names the layer
            holds as parameters.
        """
        params = dict(layer.named_parameters())
        return {name: axis for name, axis in self.state_axes.items() if name in params}

    def state_sizes(self, layer: LayerT) -> tuple[int, ...]:
        """The layer's state sizes (one entry per independently sized state block).

        The default: the one size ``getattr(layer, state_size_attribute)``.

        Parameters
        ----------
        layer
            The layer.

        Returns
        -------
        tuple of int
            The sizes.
        """
        return (int(getattr(layer, self.state_size_attribute)),)

    def resize_(self, layer: LayerT, sizes: tuple[int, ...]) -> None:
        """Reshape the state parameters to ``sizes`` (values to be overwritten by a checkpoint load).

        The default: ``layer.resize_(size)`` for the one size of :meth:`state_sizes`.

        Parameters
        ----------
        layer
            The layer.
        sizes
            As returned by :meth:`state_sizes`.

        Raises
        ------
        ValueError
            If ``sizes`` is not one positive int.
        """
        if len(sizes) != 1:
            raise ValueError(f"{self.layer_type.__name__} layers have one state size; got {tuple(sizes)}")
        layer.resize_(int(sizes[0]))

    def project_moments_(self, optimizer: torch.optim.Optimizer, layer: LayerT, state_map: StateMap) -> None:
        """Map the optimizer moments of the layer's state parameters through ``state_map``.

        Parameters
        ----------
        optimizer
            Adam, AdamW or SGD holding the layer's parameters.
        layer
            The reduced layer.
        state_map
            What :meth:`write_back_` returned.

        Raises
        ------
        NotImplementedError
            Unless the adapter sets ``supports_projection = True`` and overrides this method.
        """
        raise NotImplementedError(f"{type(self).__name__} does not project optimizer moments; use 'reset' or 'slice'")


_REGISTRY: dict[type[nn.Module], AbstractAdapter[Any]] = {}


def register_adapter(adapter: AbstractAdapter[Any]) -> AbstractAdapter[Any]:
    """Register ``adapter`` for its ``layer_type`` (and, through the MRO, the type's subclasses).

    Parameters
    ----------
    adapter
        An adapter instance.

    Returns
    -------
    AbstractAdapter
        ``adapter`` (so the call can be used as an expression).

    Raises
    ------
    TypeError
        If ``adapter`` is not an :class:`AbstractAdapter` with an ``nn.Module`` ``layer_type`` and a
        ``state_axes`` mapping.

    Examples
    --------
    >>> from ssmred_torch import LRU, LRUAdapter
    >>> register_adapter(LRUAdapter()) is not None  # re-registering replaces the previous adapter
    True
    """
    if not isinstance(adapter, AbstractAdapter):
        raise TypeError(f"adapter must be an AbstractAdapter instance; got {type(adapter).__name__}")
    layer_type = getattr(type(adapter), "layer_type", None)
    if not (isinstance(layer_type, type) and issubclass(layer_type, nn.Module)):
        raise TypeError(f"{type(adapter).__name__}.layer_type must be an nn.Module subclass; got {layer_type!r}")
    if not isinstance(getattr(type(adapter), "state_axes", None), Mapping):
        raise TypeError(f"{type(adapter).__name__}.state_axes must map the state parameters to their state axis")
    _REGISTRY[layer_type] = adapter
    return adapter


def registered_adapters() -> tuple[AbstractAdapter[Any], ...]:
    """Every registered adapter, in registration order.

    Returns
    -------
    tuple of AbstractAdapter
        The adapters.

    Examples
    --------
    >>> any(type(a).__name__ == "LRUAdapter" for a in registered_adapters())
    True
    """
    return tuple(_REGISTRY.values())


def adapter_for(module: nn.Module) -> AbstractAdapter[Any] | None:
    """The adapter registered for the type of ``module`` or its nearest registered base class.

    Parameters
    ----------
    module
        Any module.

    Returns
    -------
    AbstractAdapter or None
        The adapter, ``None`` if ``module`` is not an SSM layer.

    Examples
    --------
    >>> from ssmred_torch import LRU
    >>> class MyLRU(LRU):
    ...     pass
    >>> type(adapter_for(MyLRU(2, 2))).__name__, adapter_for(nn.Linear(2, 2))
    ('LRUAdapter', None)
    """
    for cls in type(module).__mro__:
        adapter = _REGISTRY.get(cls)  # type: ignore[arg-type]
        if adapter is not None:
            return adapter
    return None


class SSMLayer(NamedTuple):
    """One SSM layer of a model: its module path, the module and its adapter.

    Attributes
    ----------
    name
        Module path in the model (``""`` for the model itself).
    module
        The layer.
    adapter
        Its registered adapter.
    """

    name: str
    module: nn.Module
    adapter: AbstractAdapter[Any]


def ssm_layers(model: nn.Module) -> list[SSMLayer]:
    """The SSM layers of ``model`` in module order (a registered layer's own submodules are not searched).

    Parameters
    ----------
    model
        Any module (an SSM layer itself gives one entry named ``""``).

    Returns
    -------
    list of SSMLayer
        ``(name, module, adapter)`` triples.

    Raises
    ------
    TypeError
        If ``model`` is not an ``nn.Module``.

    Examples
    --------
    >>> from ssmred_torch import LRUModel
    >>> [entry.name for entry in ssm_layers(LRUModel(1, 4, 8, 2, 3))]
    ['blocks.0.ssm', 'blocks.1.ssm']
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    found: list[SSMLayer] = []
    inside: list[str] = []
    for name, module in model.named_modules():
        if any(name.startswith(prefix + ".") or prefix == "" for prefix in inside):
            continue
        adapter = adapter_for(module)
        if adapter is not None:
            found.append(SSMLayer(name, module, adapter))
            inside.append(name)
    return found


@torch.no_grad()
def replace_parameter_(param: nn.Parameter, value: torch.Tensor) -> None:
    """Give ``param`` new data (any shape) in place, safe while autograd still holds the old graph.

    The :class:`torch.nn.Parameter` object is kept, so optimizers, schedulers and hooks holding it stay
    valid; its stale ``.grad`` is cleared. Autograd caches a leaf's gradient accumulator together
    with the leaf's shape, and ``param.data = new`` renews it only when the dtype or device change:
    a graph still alive from the last step (a ``loss`` variable not yet overwritten) would make the
    next ``backward()`` fail with a shape mismatch. Switching the dtype through an empty tensor first
    drops the stale accumulator.

    Parameters
    ----------
    param
        The parameter.
    value
        New values (cast to the parameter's dtype and device, copied).

    Returns
    -------
    None
        ``param`` is changed in place.

    Examples
    --------
    >>> p = nn.Parameter(torch.zeros(3))
    >>> replace_parameter_(p, torch.ones(2))
    >>> p.shape, p.requires_grad
    (torch.Size([2]), True)
    """
    new = value.detach().to(dtype=param.dtype, device=param.device).clone()
    if new.shape != param.shape:
        flip = torch.float64 if param.dtype != torch.float64 else torch.float32
        param.data = torch.empty(0, dtype=flip, device=param.device)
    param.data = new
    param.grad = None
