"""File formats and the data store: the only modules that touch bytes.

``datastore`` (GADF DL3 index and observations), ``fitsread`` / ``fitswrite`` (FITS binary
tables and images), ``ogip`` (PHA/BKG/ARF/RMF), ``cube_io`` (the per-observation HDF5 cube),
``ecsv`` (tables), ``download`` (fetching a data release), ``units`` (unit conversion of
both readers) and ``atomic`` (the one atomic writer every output goes through).
"""
