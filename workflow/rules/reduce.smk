# One job per observation: cube.h5 and the OGIP set pha/bkg/arf/rmf.fits, by `extspec reduce`
# (the command line, extspec.cli, with its settings as JSON params; rule reduce runs it in-process).
#
# params hold only the analysis's reduction settings (STAGE_KEYS['reduce'] in
# extspec.workflow.settings), the data store and the obs id: adding an observation to an analysis
# adds one such job and leaves the others untouched; changing a reduction setting reruns them all.
#
# With reduce.batch_size > 1 (BATCHES in common.smk) an analysis's runs are reduced by one job
# per fixed block of obs ids instead (the rules reduce_batch_<analysis>_<key> below): the same
# files, written by `extspec reduce-batch` in one process; rule `reduce` then does not apply to
# that analysis.


rule reduce:
    input:
        obs_files,
    output:
        cube=f"{OUT}/obs/{{obs_id}}/cube.h5",
        pha=f"{OUT}/obs/{{obs_id}}/pha.fits",
        bkg=f"{OUT}/obs/{{obs_id}}/bkg.fits",
        arf=f"{OUT}/obs/{{obs_id}}/arf.fits",
        rmf=f"{OUT}/obs/{{obs_id}}/rmf.fits",
    params:
        provenance=provenance,
        reduction=settings("reduce"),
        datastore=lambda wildcards: datastore(wildcards.analysis),
        obs_id=lambda wildcards: int(wildcards.obs_id),
        outdir=lambda wildcards, output: os.path.dirname(output.cube),
        events=lambda wildcards: " --onoff-events" if wildcards.analysis in LIGHT_CURVE_ANALYSES else "",
    wildcard_constraints:
        analysis=analyses_regex([n for n in ANALYSES if n not in BATCHES and n not in LIGHT_CURVE_ANALYSES]),
    log:
        f"{LOGS}/reduce/{{obs_id}}.log",
    benchmark:
        f"{OUT}/benchmarks/reduce/{{obs_id}}.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    # `extspec reduce` in one of Snakemake's threads (extspec_in_process, common.smk): the
    # same step, log and files as the command line, without a process per run (its start and
    # imports were 3/4 of the job); the workflow profile sets force-use-threads (without it
    # Snakemake starts a Python process per run: job).
    run:
        extspec_in_process(
            "extspec reduce {params.obs_id} --datastore {params.datastore:q} --outdir {params.outdir:q}"
            " --settings {params.reduction:q} --log {log:q} --quiet{params.events}"
        )


# One rule per batch (a rule's outputs cannot be computed from a wildcard).  Its declared outputs
# are the batch's manifest obs/batch-<key>.<digest of its obs ids>.json (first: the aggregates'
# input, common.smk per_obs, so the DAG holds one file per batch for them) and its arrays file
# (.h5, named in the manifest), which the aggregates read instead of the runs' files
# (extspec.io.batch_arrays).  The runs' own files, obs/<obs_id>/cube.h5 etc., are written by
# the same job but not declared: Snakemake's bookkeeping of a finished job (a metadata record
# per output, with the checksum of every input in each) then costs two records per batch
# instead of five per run times the batch's DL3 files (docs/tutorials/cluster.md, "Archive
# scale").  A removed per-run file is still noticed: missing_run_files lists those of the
# batches already done, the batch declares them as outputs and `all` asks for them, so the
# batch reruns.  params: as rule reduce, with the batch's obs ids instead of one: adding a run
# reruns only its batch (its manifest's name changes).  The batch's DL3 files are not inputs
# either: Snakemake sizes every input of every job ready to run at each scheduling round, which
# grew with batches x DL3 files per finished job; params `dl3` is a digest of their sizes and
# modification times instead (files_signature), so a changed, touched or removed DL3 file
# reruns its batch through the params trigger (the workflow profile's rerun-triggers).
# A run that fails inside a batch gets a one-line failure marker under its product names, and
# the job succeeds, so that the other runs' products stay (Snakemake would delete the declared
# outputs of a failed job); the aggregates stop on the marker naming the run
# (extspec.io.batch).  An analysis with a light curve: each run's onoff_events.h5 too
# (--onoff-events, the bytes of rule reduce_lc), a failed run's a marker as well.
MISSING_RUN_FILES = []
"""Per-run files of finished batches that are gone (missing_run_files): targets of `all`."""

for _name, _batches in BATCHES.items():
    _safe = re.sub(r"\W", "_", _name)
    _out = f"{RESULTS}/{_name}"
    _settings = settings_json(stage_config(ANALYSES[_name]["config"], "reduce"))
    _lc = _name in LIGHT_CURVE_ANALYSES
    _products = REDUCTION_PRODUCTS + (("onoff_events.h5",) if _lc else ())
    for _key, _ids in _batches.items():
        _manifest = f"{_out}/obs/{manifest_name(_key, _ids)}"
        # a batch not yet done writes every run's files anyway; only a finished one is listed
        _missing = missing_run_files(f"{_out}/obs", _ids, _products) if os.path.exists(_manifest) else []
        MISSING_RUN_FILES += _missing

        rule:
            name:
                f"reduce_batch_{_safe}_{_key}"
            # no inputs: the DL3 files' sizes and modification times are in params (dl3)
            output:
                [_manifest, f"{_out}/obs/{arrays_name(manifest_name(_key, _ids))}", *_missing],
            params:
                provenance=ANALYSES[_name]["provenance"],
                reduction=_settings,
                datastore=ANALYSES[_name]["datastore"],
                obs_ids=" ".join(map(str, _ids)),
                dl3=files_signature(dict.fromkeys(f for o in _ids for f in ANALYSES[_name]["obs_files"][str(o)])),
                outroot=f"{_out}/obs",
                events=" --onoff-events" if _lc else "",
            log:
                f"{_out}/logs/reduce/batch-{_key}.log",
            benchmark:
                f"{_out}/benchmarks/reduce/batch-{_key}.tsv"
            threads: 1
            resources:
                mem_mb=1000,
                runtime=10 + len(_ids) // 10,
            shell:
                "extspec reduce-batch {params.obs_ids} --datastore {params.datastore:q} --outroot {params.outroot:q}"
                " --manifest {output[0]:q} --settings {params.reduction:q} --log {log:q} --quiet{params.events}"
