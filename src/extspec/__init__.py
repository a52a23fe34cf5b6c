"""extspec: 1D ON/OFF spectral analysis of (extended) gamma-ray sources from IACT DL3 data.

Data flows one way through the modules, one per analysis stage::

    datastore -> irf -> geometry -> cube -> regions/reflected -> spectrum -> safe_mask
              -> models/stats -> fit -> fluxpoints/cumulative -> plots

The package has no Snakemake imports; the workflow in ``workflow/`` calls the functions
of :mod:`extspec.workflow.pipeline`.
"""

__version__ = "0.1.0"
