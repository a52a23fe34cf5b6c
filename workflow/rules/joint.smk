# Joint fits (config key `joint`): one model fitted to the spectra of several analyses at once
# (extspec joint-fit).  A fit only: the inputs are the named analyses' OGIP sets (reduced runs
# and external spectra), so adding a run to one analysis reruns its reduction, its aggregates
# and the joint fit; the params hold only the joint block, so changing its model reruns only
# this job.  One rule per joint fit (its outputs name its analyses), named joint_fit_<name>.
import re
import types

from extspec.workflow.joint_config import joint_settings
from extspec.workflow.joint_fit import joint_outputs

JOINT = PREPARED["joint"]  # {joint name: block with defaults}


def joint_rule_name(name):
    """The rule of one joint fit: joint_fit_<name> with every non-word character as '_'."""
    return "joint_fit_" + re.sub(r"\W", "_", name)


def joint_files(name):
    """Input function: every spectrum file (PHA, BKG, ARF, RMF, external sets) of the joint's analyses."""

    def inputs(wildcards):
        out = []
        for a in JOINT[name]["analyses"]:
            w = types.SimpleNamespace(analysis=a)
            out += spectra_pha(w) + external_files(w)
            out += per_obs("bkg.fits")(w) + per_obs("arf.fits")(w) + per_obs("rmf.fits")(w)
        return out

    return inputs


def joint_spectra_args(name):
    """Params function: `--spectra ANALYSIS PHA ...` for each analysis of the joint fit."""

    def args(wildcards):
        return " ".join(
            "--spectra " + " ".join(shlex.quote(x) for x in [a, *spectra_pha(types.SimpleNamespace(analysis=a))])
            for a in JOINT[name]["analyses"]
        )

    return args


def joint_products(name):
    """The files one joint fit writes, under <results_dir>/<name>/fit/."""
    return [f"{RESULTS}/{name}/fit/{f}" for f in joint_outputs(JOINT[name]["analyses"])]


for _name in JOINT:

    rule:
        name:
            joint_rule_name(_name)
        input:
            joint_files(_name),
        output:
            [p if not p.endswith("sed.png") else report(p, caption="../report/joint.rst", category=_name,
                                                          subcategory="Joint fit")
             for p in joint_products(_name)],
        params:
            name=_name,
            code=CODE,
            settings=settings_json(joint_settings(_name, JOINT[_name], ANALYSES)),
            spectra=joint_spectra_args(_name),
            outdir=f"{RESULTS}/{_name}/fit",
        log:
            f"{RESULTS}/{_name}/logs/joint_fit.log",
        priority: 3
        threads: 1
        resources:
            mem_mb=2000,
            runtime=15,
        shell:
            "extspec joint-fit {params.spectra} --settings {params.settings:q} --outdir {params.outdir:q}"
            " --log {log:q} --quiet"
