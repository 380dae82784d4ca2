r"""In-place state surgery of the Mamba layer, used by its adapter (:class:`~ssmred_torch.MambaAdapter`).

``_MambaSurgery`` (a mixin of :class:`~ssmred_torch.Mamba`) keeps diagonal modes (``keep_modes_``:
the modal rules), replaces the state by a per-channel projection :math:`x' = N_d x` (``project_``:
the balanced rule) and reshapes every state-sized tensor (``resize_``: before loading a reduced
checkpoint). Parameters change shape only through :func:`~ssmred_torch.replace_parameter_`.
"""

from __future__ import annotations

from ssmred._require import require

require("torch")

import torch  # noqa: E402

from ssmred_torch._adapter import replace_parameter_  # noqa: E402
from ssmred_torch.layers.mamba_options import _positive_int  # noqa: E402

__all__: list[str] = []


class _MambaSurgery:
    """The in-place surgery of :class:`~ssmred_torch.Mamba` (a mixin; the layer holds the state)."""

    def _set_buffer(self, name: str, value: torch.Tensor) -> None:
        old = getattr(self, name)
        setattr(self, name, value.detach().to(dtype=old.dtype, device=old.device).clone())

    def _feature_rows(self, idx: torch.Tensor) -> torch.Tensor:
        R, n = self.dt_rank, self.n_features
        head = torch.arange(R, device=idx.device)
        return torch.cat([head, R + idx, R + n + idx])

    @torch.no_grad()
    def keep_modes_(self, index: torch.Tensor) -> None:
        r"""Keep some of the current diagonal modes (modal reduction), in place.

        ``modal_shared``: ``index`` ``(r,)`` — the same modes for every channel; ``A_log`` columns,
        the :math:`B, C` rows of ``x_proj`` and the statistics are sliced (a plain smaller Mamba).
        ``modal_channel``: ``index`` ``(d_inner, r)`` — per channel; ``A_log`` and ``mode_index``
        are gathered, ``x_proj`` is kept.

        Parameters
        ----------
        index
            Indices of the modes to keep (in the current numbering).

        Raises
        ------
        ValueError
            If the rule is not modal or ``index`` has the wrong shape or range.

        Examples
        --------
        >>> from ssmred_torch import Mamba
        >>> layer = Mamba(2, 4)
        >>> layer.keep_modes_(torch.tensor([0, 2]))
        >>> layer.d_state, tuple(layer.x_proj.weight.shape)
        (2, (5, 4))
        """
        n, d = self.d_state, self.d_inner
        index = index.to(device=self.A_log.device, dtype=torch.int64)
        if index.numel() and (int(index.min()) < 0 or int(index.max()) >= n):
            raise ValueError(f"mode indices must lie in [0, {n}); got {index.tolist()}")
        if self.rule == "modal_shared":
            if index.ndim != 1 or not 1 <= index.numel() <= n:
                raise ValueError(f"modal_shared keeps one index vector (r,) with 1 <= r <= {n}")
            rows = self._feature_rows(index)
            replace_parameter_(self.A_log, self.A_log[:, index])
            replace_parameter_(self.x_proj.weight, self.x_proj.weight[rows])
            self._set_buffer("calib_delta_B", self.calib_delta_B[:, :, index])
            self._set_buffer("calib_B", self.calib_B[:, index])
            self._set_buffer("calib_C", self.calib_C[:, index])
            self._set_buffer("calib_transition", self.calib_transition[:, :, index])
        elif self.rule == "modal_channel":
            if index.ndim != 2 or index.shape[0] != d or not 1 <= index.shape[1] <= n:
                raise ValueError(f"modal_channel keeps one index row per channel: shape ({d}, r), 1 <= r <= {n}")
            old = self.mode_index if self.indexed else torch.arange(n, device=index.device).expand(d, n)
            replace_parameter_(self.A_log, self.A_log.gather(1, index))
            self._set_buffer("mode_index", old.gather(1, index))
            t = self.calib_transition
            self._set_buffer("calib_transition", t.gather(2, index[None, :, :, None].expand(t.shape[0], d, -1, 2)))
        else:
            raise ValueError(f"keep_modes_ needs a modal rule; this layer's rule is {self.rule!r}")

    @torch.no_grad()
    def project_(self, rates: torch.Tensor, N: torch.Tensor, M: torch.Tensor) -> None:
        r"""Replace the state by a per-channel projected one (``balanced`` reduction), in place.

        The new state of channel ``d`` is :math:`x' = N_d x` with rates :math:`a'`;
        ``B_map`` :math:`\leftarrow N_d\,B_{map}` and ``C_map`` :math:`\leftarrow C_{map} M_d` (the
        identity before the first reduction). The transition statistics are dropped (they depend on
        the rates).

        Parameters
        ----------
        rates
            Complex continuous rates ``(d_inner, r)`` with negative real parts.
        N
            ``(d_inner, r, d_state)``.
        M
            ``(d_inner, d_state, r)``.

        Raises
        ------
        ValueError
            If the rule is not ``balanced``, for wrong shapes, or rates with a real part ``>= 0``.

        Examples
        --------
        >>> from ssmred_torch import Mamba
        >>> layer = Mamba(1, 3, rule="balanced")
        >>> N = torch.eye(3, dtype=torch.complex128)[:2].expand(2, 2, 3)
        >>> layer.project_(torch.full((2, 2), -1.0 + 0.5j), N, N.mT)
        >>> layer.d_state, layer.projected
        (2, True)
        """
        if self.rule != "balanced":
            raise ValueError(f"project_ needs rule='balanced'; this layer's rule is {self.rule!r}")
        d, n = self.d_inner, self.d_state
        r = int(rates.shape[-1])
        if tuple(rates.shape) != (d, r) or tuple(N.shape) != (d, r, n) or tuple(M.shape) != (d, n, r):
            raise ValueError(
                f"need rates (d_inner={d}, r), N ({d}, r, {n}), M ({d}, {n}, r); got {tuple(rates.shape)}, "
                f"{tuple(N.shape)}, {tuple(M.shape)}"
            )
        rates = rates.to(torch.complex128)
        if not bool((rates.real < 0).all()) or not bool(torch.isfinite(torch.view_as_real(rates)).all()):
            raise ValueError("the rates must be finite with negative real parts")
        N, M = N.to(torch.complex128), M.to(torch.complex128)
        if self.projected:
            Bm, Cm = self._maps()
            Bm, Cm = N @ Bm.to(torch.complex128), Cm.to(torch.complex128) @ M
        else:
            Bm, Cm = N, M
        replace_parameter_(self.A_log, torch.log(-rates.real))
        self._set_buffer("A_imag", rates.imag)
        self._set_buffer("B_map_re", Bm.real)
        self._set_buffer("B_map_im", Bm.imag)
        self._set_buffer("C_map_re", Cm.real)
        self._set_buffer("C_map_im", Cm.imag)
        K = self.calib_weight.shape[0]
        self._set_buffer("calib_transition", self.calib_transition.new_zeros(K, d, r, 2))
        self.calib_weight_a.zero_()

    @torch.no_grad()
    def resize_(self, d_state: int) -> None:
        """Reshape every state-sized tensor to ``d_state`` states (zeros; to be overwritten by a load).

        Parameters
        ----------
        d_state
            New number of states per channel.

        Raises
        ------
        ValueError
            If ``d_state < 1``, or larger than the feature size for a rule that keeps ``x_proj``.

        Examples
        --------
        >>> from ssmred_torch import Mamba
        >>> layer = Mamba(2, 8, rule="modal_channel")
        >>> layer.resize_(3); layer.d_state, tuple(layer.mode_index.shape)
        (3, (4, 3))
        """
        r = _positive_int("d_state", d_state)
        d, R, K = self.d_inner, self.dt_rank, self.calib_weight.shape[0]
        kw = {"dtype": self.A_log.dtype, "device": self.A_log.device}
        if self.rule == "modal_shared":
            nf = r
            replace_parameter_(self.x_proj.weight, torch.zeros(R + 2 * r, d, **kw))
        else:
            nf = self.n_features
            if r > nf:
                raise ValueError(f"d_state={r} exceeds the {nf} selected features of this {self.rule!r} layer")
            reduced = r < nf
            if self.rule == "modal_channel":
                self._set_buffer("mode_index", torch.zeros(d, r if reduced else 0, dtype=torch.int64))
            else:
                k = r if reduced else 0
                self._set_buffer("A_imag", torch.zeros(d, k, **kw))
                self._set_buffer("B_map_re", torch.zeros(d, k, nf, **kw))
                self._set_buffer("B_map_im", torch.zeros(d, k, nf, **kw))
                self._set_buffer("C_map_re", torch.zeros(d, nf, k, **kw))
                self._set_buffer("C_map_im", torch.zeros(d, nf, k, **kw))
        replace_parameter_(self.A_log, torch.zeros(d, r, **kw))
        self._set_buffer("calib_delta_B", torch.zeros(K, d, nf, **kw))
        self._set_buffer("calib_B", torch.zeros(K, nf, **kw))
        self._set_buffer("calib_C", torch.zeros(K, nf, **kw))
        self._set_buffer("calib_transition", torch.zeros(K, d, r, 2, **kw))
        self.clear_statistics_()
