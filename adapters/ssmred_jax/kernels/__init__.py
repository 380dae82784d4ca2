r"""Batched square-root balanced truncation of diagonal discrete-time systems, in JAX (any device).

The JAX counterpart of the torch adapter's batched kernels, with the same mathematics. Every function
works on a stack of ``G`` systems :math:`(\mathrm{diag}\lambda_g, B_g, C_g)` with a common state size
``n``, in complex128; they are pure functions (``jax.jit``/``jax.vmap`` compatible, static shapes) and
must run with 64-bit types enabled (``with jax.enable_x64(True): ...``), which
:func:`ssmred_jax.reduce_model` arranges around its jitted calls.

1. closed-form Gramians (SPEC §2)

   .. math::

       P_{ij} = \frac{(BB^H)_{ij}}{1-\lambda_i\bar\lambda_j},\qquad
       Q_{ij} = \frac{(C^HC)_{ij}}{1-\bar\lambda_i\lambda_j},

   with the denominators evaluated from the log-eigenvalues :math:`\ell = \log\lambda` as
   :math:`1 - e^{x+iy} = -\mathrm{expm1}(x) + 2e^x\sin^2(y/2) - i e^x\sin y`,
   :math:`x = \mathrm{Re}(\ell_i + \bar\ell_j)`, :math:`y = \mathrm{Im}(\ell_i - \ell_j)` (no cancellation
   as :math:`|\lambda| \to 1`);
2. factors :math:`P = L_cL_c^H`, :math:`Q = L_oL_o^H` (:func:`psd_factor`: Cholesky, and where it fails
   because a Gramian is numerically semidefinite, the spectral factor :func:`spectral_factor`; never a
   jitter);
3. Hankel singular values :math:`\sigma = \mathrm{svd}(L_o^HL_c)` (square-root method);
4. SR projections :math:`T = L_cV_r\Sigma_r^{-1/2}`, :math:`T_i = \Sigma_r^{-1/2}U_r^HL_o^H` and the reduced
   :math:`(T_i\,\mathrm{diag}(\lambda)\,T,\ T_iB,\ CT)`;
5. re-diagonalisation :math:`A_r = V\mathrm{diag}(\mu)V^{-1}` and the LRU parameters (SPEC §4).

The functions live in one module per concept, all re-exported here: :mod:`~ssmred_jax.kernels.gramians`
(1-3), :mod:`~ssmred_jax.kernels.truncation` (4), :mod:`~ssmred_jax.kernels.diagonal` (5).

References
----------
laub1987, antoulas2005
"""

from ssmred._require import require

require("jax")

from ssmred_jax.kernels.diagonal import PADDING_EIGENVALUE as PADDING_EIGENVALUE  # noqa: E402
from ssmred_jax.kernels.diagonal import DiagonalForm as DiagonalForm  # noqa: E402
from ssmred_jax.kernels.diagonal import diagonalize as diagonalize  # noqa: E402
from ssmred_jax.kernels.diagonal import lru_parameters_from_diagonal as lru_parameters_from_diagonal  # noqa: E402
from ssmred_jax.kernels.gramians import HankelSVD as HankelSVD  # noqa: E402
from ssmred_jax.kernels.gramians import diagonal_gramians as diagonal_gramians  # noqa: E402
from ssmred_jax.kernels.gramians import hankel_svd_diagonal as hankel_svd_diagonal  # noqa: E402
from ssmred_jax.kernels.gramians import hsv_diagonal as hsv_diagonal  # noqa: E402
from ssmred_jax.kernels.gramians import psd_factor as psd_factor  # noqa: E402
from ssmred_jax.kernels.gramians import spectral_factor as spectral_factor  # noqa: E402
from ssmred_jax.kernels.truncation import truncate_diagonal as truncate_diagonal  # noqa: E402
from ssmred_jax.kernels.truncation import truncate_masked as truncate_masked  # noqa: E402

__all__ = [
    "PADDING_EIGENVALUE",
    "DiagonalForm",
    "HankelSVD",
    "diagonal_gramians",
    "diagonalize",
    "hankel_svd_diagonal",
    "hsv_diagonal",
    "lru_parameters_from_diagonal",
    "psd_factor",
    "spectral_factor",
    "truncate_diagonal",
    "truncate_masked",
]
