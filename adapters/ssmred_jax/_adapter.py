"""The layer-family protocol of the JAX adapter (abstract/final pattern, STYLE §9) and layer discovery.

An adapter converts one kind of equinox SSM layer to and from :class:`ssmred.StateSpace` and tells
the batched reduction how to read the layer's diagonal system and how to write a reduced one back
(functionally: a new layer). Adapters are registered by layer type and looked up along the MRO;
:func:`ssm_layers` is the one place that finds the SSM layers of a model (any pytree).

The state layout is declared, not coded (as in ``ssmred_torch``): an adapter names its
state-indexed fields and their state axis in :attr:`~AbstractAdapter.state_axes`, the layer
attribute holding its state size in :attr:`~AbstractAdapter.state_size_attribute` and the fields
the moment projection maps in :attr:`~AbstractAdapter.moment_fields`; the default
:meth:`~AbstractAdapter.state_parameters`, :meth:`~AbstractAdapter.state_size`,
:meth:`~AbstractAdapter.moment_layout` and :meth:`~AbstractAdapter.write_back` (the layer type's
``from_parameters`` with the reduced state fields and every other field kept) read these.
"""

from __future__ import annotations

import abc
import dataclasses
import importlib
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Generic, NamedTuple, TypeVar

from ssmred._require import require

require("jax")

import jax  # noqa: E402

from ssmred.statespace import StateSpace  # noqa: E402

__all__ = [
    "AbstractAdapter",
    "MomentLayout",
    "SSMLayer",
    "adapter_for",
    "register_adapter",
    "replace_layers",
    "ssm_layers",
]

LayerT = TypeVar("LayerT")


class MomentLayout(NamedTuple):
    """Where a family keeps the parts the ``"project"`` optimizer policy maps (:func:`ssmred_jax.rebuild_opt_state`).

    Attributes
    ----------
    per_state
        Fields with one value per state (mapped by convex combinations).
    input
        The input matrix: a ``(re, im)`` pair of field names, or one field name whose trailing axis of
        length 2 holds the real and imaginary parts (S5's layout).
    output
        The output matrix, likewise.
    """

    per_state: tuple[str, ...]
    input: tuple[str, str] | str
    output: tuple[str, str] | str


class AbstractAdapter(abc.ABC, Generic[LayerT]):
    """What the reduction needs to know about one family of SSM layers (one instance per family).

    Besides ``layer_type``, an adapter declares its state layout:

    ``state_axes: ClassVar[Mapping[str, int]]``
        Every field that depends on the state size (an array of the equinox layer) and its state axis.
    ``state_size_attribute: ClassVar[str]``
        The layer attribute holding its number of states (default ``"n_states"``).
    ``moment_fields: ClassVar[MomentLayout]``
        The per-state, input and output fields the ``"project"`` optimizer policy maps.

    The default :meth:`write_back` calls ``layer_type.from_parameters`` with every dataclass field
    of the layer (arrays and static settings), the fields of ``state_axes`` replaced.
    """

    layer_type: ClassVar[type]
    #: State-dependent field name -> its state axis (see the class docstring).
    state_axes: ClassVar[Mapping[str, int]]
    #: The layer attribute with its number of states.
    state_size_attribute: ClassVar[str] = "n_states"
    #: The fields the moment projection treats as per-state, input and output parts.
    moment_fields: ClassVar[MomentLayout]

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    @abc.abstractmethod
    def to_statespace(self, layer: LayerT, *, exact: bool = False) -> StateSpace:
        """The layer's linear time-invariant system (host copy, complex128).

        Parameters
        ----------
        layer
            The layer.
        exact
            ``False``: the system the reduction analyses; ``True``: one whose transfer function is the
            layer's input/output map.

        Returns
        -------
        StateSpace
            The system.
        """

    @abc.abstractmethod
    def from_statespace(self, sys: StateSpace, *, like: LayerT, max_condition: float = 1e8) -> LayerT:
        """A new layer whose analysed system (``exact=False``) is ``sys``.

        Parameters
        ----------
        sys
            The system.
        like
            Template layer (sizes, dtype).
        max_condition
            Largest accepted eigenvector condition number when ``sys`` must be re-diagonalised.

        Returns
        -------
        object
            The new layer.
        """

    @abc.abstractmethod
    def systems(self, layer: LayerT) -> tuple[jax.Array, jax.Array, jax.Array]:
        """The diagonal system the reduction analyses, as a pure (traceable) function, in complex128.

        Parameters
        ----------
        layer
            The layer (possibly a tracer inside ``jax.jit`` / ``jax.vmap``).

        Returns
        -------
        tuple of jax.Array
            ``(log_lam, B, C)`` with shapes ``(n,)``, ``(n, m)``, ``(p, n)``.
        """

    def write_back(self, layer: LayerT, params: Mapping[str, jax.Array]) -> LayerT:
        """A new layer with the reduced state parameters ``params`` (the other fields of ``layer``).

        The default: ``layer_type.from_parameters`` with the fields of :attr:`state_axes` taken from
        ``params`` and every other dataclass field (the arrays that do not depend on the state size,
        the static settings) from ``layer``.

        Parameters
        ----------
        layer
            The layer before the reduction.
        params
            New values of the state parameters (already in the layer's dtype).

        Returns
        -------
        object
            The new layer.
        """
        kept = {f.name: getattr(layer, f.name) for f in dataclasses.fields(layer) if f.name not in self.state_axes}  # type: ignore[arg-type]
        return self.layer_type.from_parameters(**kept, **{k: params[k] for k in self.state_axes})  # type: ignore[attr-defined, no-any-return]

    def state_parameters(self, layer: LayerT | None) -> Mapping[str, int]:
        """The fields that depend on the state size, each with its state axis (from :attr:`state_axes`).

        Parameters
        ----------
        layer
            The layer (unused by the default: the layout is the same for every layer of the family).

        Returns
        -------
        Mapping
            Field name -> axis (a new dict).
        """
        return dict(self.state_axes)

    @abc.abstractmethod
    def parameters_from_modes(
        self, like: LayerT, data: Any, mu: jax.Array, B: jax.Array, C: jax.Array, *, dtype: Any, r: jax.Array
    ) -> tuple[dict[str, jax.Array], jax.Array, jax.Array]:
        """The new state parameters of a group of layers from their re-diagonalised reduced modes (traceable).

        Parameters
        ----------
        like
            One layer of the group (its static settings).
        data
            The group's stacked :meth:`truncation_data`.
        mu, B, C
            Modes ``(G, n)``, ``(G, n, m)``, ``(G, p, n)`` (the leading ``r`` valid, the rest padding).
        dtype
            The layers' dtype.
        r
            Orders ``(G,)``.

        Returns
        -------
        tuple
            ``(params, unstable, gain)``: float64 parameters with a leading group axis, a bool ``(G,)``
            (a valid mode unstable or not representable), and the new input gains ``(G, n)`` (see
            :meth:`input_gain`).
        """

    @abc.abstractmethod
    def input_gain(self, layer: LayerT) -> jax.Array:
        """The per-state gains ``g`` with analysed input matrix ``diag(g) B_stored`` (needs x64).

        Parameters
        ----------
        layer
            The layer.

        Returns
        -------
        jax.Array
            Shape ``(n,)``.
        """

    def moment_layout(self, layer: LayerT | None) -> MomentLayout:
        """Which fields the moment projection treats as per-state, input and output parts (:attr:`moment_fields`).

        Parameters
        ----------
        layer
            The layer (unused by the default).

        Returns
        -------
        MomentLayout
            The layout.
        """
        return self.moment_fields

    def truncation_data(self, layer: LayerT) -> Any:
        """Per-layer arrays :meth:`parameters_from_modes` needs besides the modes (traceable; default none).

        Parameters
        ----------
        layer
            The layer.

        Returns
        -------
        object
            A pytree of arrays (stacked over a group inside the jitted truncation).
        """
        return ()

    def output_factor(self, layer: LayerT) -> float:
        """Factor between the analysed system's error and the layer's real output error (default 1).

        Parameters
        ----------
        layer
            The layer.

        Returns
        -------
        float
            Multiplies the reported error bound.
        """
        return 1.0

    def state_size(self, layer: LayerT) -> int:
        """The current number of states: ``getattr(layer, state_size_attribute)``.

        Parameters
        ----------
        layer
            The layer.

        Returns
        -------
        int
            ``n``.
        """
        return int(getattr(layer, self.state_size_attribute))


_REGISTRY: dict[type, AbstractAdapter[Any]] = {}


def register_adapter(adapter: AbstractAdapter[Any]) -> AbstractAdapter[Any]:
    """Register ``adapter`` for its ``layer_type`` (and subclasses, found along the MRO).

    Parameters
    ----------
    adapter
        An adapter instance.

    Returns
    -------
    AbstractAdapter
        ``adapter`` itself.

    Raises
    ------
    TypeError
        If ``adapter`` is not an :class:`AbstractAdapter` with a ``state_axes`` mapping and a
        :class:`MomentLayout` ``moment_fields``.

    Examples
    --------
    >>> from ssmred_jax import LRU
    >>> type(adapter_for(LRU)).__name__
    'LRUAdapter'
    """
    if not isinstance(adapter, AbstractAdapter):
        raise TypeError(f"adapter must be an AbstractAdapter; got {type(adapter).__name__}")
    if not isinstance(getattr(adapter, "state_axes", None), Mapping):
        raise TypeError(f"{type(adapter).__name__} must declare state_axes (state field -> its state axis)")
    if not isinstance(getattr(adapter, "moment_fields", None), MomentLayout):
        raise TypeError(f"{type(adapter).__name__} must declare moment_fields (a MomentLayout)")
    _REGISTRY[adapter.layer_type] = adapter
    return adapter


def adapter_for(obj: object) -> AbstractAdapter[Any] | None:
    """The adapter registered for ``obj``'s type (or ``obj`` itself if it is a type), walking the MRO.

    Parameters
    ----------
    obj
        A layer instance or a layer type.

    Returns
    -------
    AbstractAdapter or None
        ``None`` if ``obj`` is not an SSM layer.

    Examples
    --------
    >>> adapter_for(3) is None
    True
    """
    cls = obj if isinstance(obj, type) else type(obj)
    for base in cls.__mro__:
        adapter = _REGISTRY.get(base)
        if adapter is not None:
            return adapter
    return None


def _is_ssm(x: object) -> bool:
    return not isinstance(x, type) and adapter_for(x) is not None


class SSMLayer(NamedTuple):
    """One SSM layer found in a model by :func:`ssm_layers`.

    Attributes
    ----------
    index
        Position among the model's pytree leaves when SSM layers count as leaves.
    path
        Its pytree key path (``jax.tree_util`` keys).
    name
        ``jax.tree_util.keystr(path)``, e.g. ``".blocks[0].lru"`` (``""`` for a bare layer).
    layer
        The layer.
    adapter
        Its adapter.
    """

    index: int
    path: tuple[Any, ...]
    name: str
    layer: Any
    adapter: AbstractAdapter[Any]


def ssm_layers(model: Any) -> list[SSMLayer]:
    """Every registered SSM layer in ``model`` (any pytree: an equinox module, a list, a dict, ...), in leaf order.

    Parameters
    ----------
    model
        The model (or a bare layer).

    Returns
    -------
    list of SSMLayer
        Index, key path, name, layer and adapter of each.

    Examples
    --------
    >>> from ssmred_jax import LRU
    >>> layers = [LRU(2, 8, key=jax.random.key(0)), LRU(2, 8, key=jax.random.key(1))]
    >>> [(s.name, s.layer.d_state) for s in ssm_layers({"stack": layers, "scale": 1.0})]
    [("['stack'][0]", 8), ("['stack'][1]", 8)]
    """
    leaves = jax.tree_util.tree_flatten_with_path(model, is_leaf=_is_ssm)[0]
    return [
        SSMLayer(i, tuple(path), jax.tree_util.keystr(path), leaf, adapter_for(leaf))  # type: ignore[arg-type]
        for i, (path, leaf) in enumerate(leaves)
        if _is_ssm(leaf)
    ]


def replace_layers(model: Any, replacements: Mapping[int, Any]) -> Any:
    """A copy of ``model`` with the SSM layers at the given leaf indices (see :class:`SSMLayer`) replaced.

    Parameters
    ----------
    model
        The model.
    replacements
        ``SSMLayer.index`` -> new layer (shapes may differ).

    Returns
    -------
    object
        The new model (same pytree structure above the replaced layers); ``model`` is unchanged.

    Raises
    ------
    ValueError
        If an index does not refer to an SSM layer of ``model``.

    Examples
    --------
    >>> from ssmred_jax import LRU
    >>> model = [LRU(2, 8, key=jax.random.key(0)), 1.0]
    >>> new = replace_layers(model, {0: LRU(2, 4, key=jax.random.key(1))})
    >>> model[0].d_state, new[0].d_state, new[1]
    (8, 4, 1.0)
    """
    leaves, treedef = jax.tree_util.tree_flatten(model, is_leaf=_is_ssm)
    for index in replacements:
        if not (0 <= index < len(leaves)) or not _is_ssm(leaves[index]):
            raise ValueError(f"replacements: leaf {index} is not an SSM layer of the model")
    leaves = [replacements.get(i, leaf) for i, leaf in enumerate(leaves)]
    return jax.tree_util.tree_unflatten(treedef, leaves)


def _lazy_attributes(module: str, **homes: str) -> Callable[[str], Any]:
    """A module ``__getattr__`` (PEP 562) that imports each name of ``homes`` from its home module on first use.

    A layer module keeps re-exporting its adapter this way: the adapter's module imports the layer's,
    so importing it back at import time would be a cycle.
    """

    def __getattr__(name: str) -> Any:
        if name in homes:
            return getattr(importlib.import_module(homes[name]), name)
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    return __getattr__
