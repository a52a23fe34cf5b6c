"""Workflow glue: config validation (``config``) and one function per workflow step
(``pipeline``).  No Snakemake imports: the rules and the command line call these."""
