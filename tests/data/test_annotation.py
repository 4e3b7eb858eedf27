"""ComprehensiveDataAnnotationSystem: complete annotations validate, inconsistent ones are refused."""

from __future__ import annotations

import copy
import hashlib
import re
import subprocess
from datetime import datetime

import pytest

from astrobio.data.annotation import ComprehensiveDataAnnotationSystem, astropy_unit, config_hash
from astrobio.io import git_revision
from astrobio.errors import AnnotationError, InputValidationError


@pytest.fixture
def annotated(runs):
    system = ComprehensiveDataAnnotationSystem()
    return system, runs[0], system.annotate(runs[0], config={"resolution": "demo", "n": 4})


def test_annotation_content(annotated, runs):
    system, run, ann = annotated
    cube = ann["arrays"]["datacube_prior"]
    assert [v["standard_name"] for v in cube["variables"]] == ["air_temperature", "specific_humidity"]
    assert [v["units"] for v in cube["variables"]] == ["K", "kg kg-1"]
    assert ann["coordinates"]["lat_deg"]["units"] == "degrees_north"
    assert ann["coordinates"]["lon_deg"]["units"] == "degrees_east"
    assert ann["coordinates"]["sigma"] == {**ann["coordinates"]["sigma"], "units": "1",
                                           "standard_name": "atmosphere_sigma_coordinate"}
    assert ann["scalars"]["truth"]["star_teff_k"] == "K" and ann["scalars"]["labels"]["log10_co2"] == "dex"
    prov = ann["provenance"]
    assert prov["source"] == "simulator" and prov["seed"] == 0 and prov["package_version"] == "0.1.0"
    assert prov["config_hash"] == config_hash({"n": 4, "resolution": "demo"})
    assert datetime.fromisoformat(prov["created_utc"]).utcoffset().total_seconds() == 0
    assert ann["domain_tags"] == ["stellar", "orbital", "climate", "atmosphere", "spectroscopy", "metabolism", "text"]
    no_spec = system.annotate(runs[2], source="catalog")
    assert "spectrum" not in no_spec["arrays"] and "spectroscopy" not in no_spec["domain_tags"]
    assert no_spec["provenance"]["source"] == "catalog"
    system.validate(ann, run)
    system.validate(no_spec, runs[2])
    with pytest.raises(InputValidationError, match="source"):
        system.annotate(run, source="telescope")


def test_units_parse_with_astropy():
    import astropy.units as u

    assert astropy_unit("kg kg-1") == u.dimensionless_unscaled
    assert astropy_unit("degrees_north") == u.deg
    assert astropy_unit("ppm").to(u.dimensionless_unscaled) == pytest.approx(1e-6)
    with pytest.raises(ValueError):
        astropy_unit("furlongs per fortnight")


def test_config_hash_and_git_revision():
    assert config_hash({}) == hashlib.sha256(b"{}").hexdigest()
    assert config_hash({"b": 1, "a": [1, 2]}) == hashlib.sha256(b'{"a":[1,2],"b":1}').hexdigest()
    assert config_hash({"a": 1}) != config_hash({"a": 2})
    rev = git_revision()
    if rev is not None:  # this test runs from a git checkout: the revision names a real commit
        assert subprocess.run(["git", "cat-file", "-e", f"{rev}^{{commit}}"], capture_output=True).returncode == 0


def _broken(ann, edit):
    bad = copy.deepcopy(ann)
    edit(bad)
    return bad


@pytest.mark.parametrize("edit, message", [
    (lambda a: a["arrays"]["datacube_true"]["variables"][0].update(units="m"),
     "unit 'm' of datacube_true:air_temperature is inconsistent with standard_name 'air_temperature'"),
    (lambda a: a["arrays"]["datacube_prior"]["variables"][1].update(units="kg m^^"), "not parseable"),
    (lambda a: a["arrays"]["datacube_prior"]["variables"].pop(), "has 2 variables but 1 CF names"),
    (lambda a: a["arrays"].pop("spectrum"), "array spectrum is present but not annotated"),
    (lambda a: a["coordinates"]["lat_deg"].update(units="degrees_east", standard_name="longitude"),
     "lat_deg"),
    (lambda a: a["coordinates"]["sigma"].pop("standard_name"), "atmosphere_sigma_coordinate"),
    (lambda a: a["scalars"]["truth"].update(star_teff_k="m"), "truth.star_teff_k is not a temperature"),
    (lambda a: a["scalars"]["observed"].pop("distance_pc"), "observed.distance_pc has no unit"),
    (lambda a: a["provenance"].pop("config_hash"), "provenance lacks 'config_hash'"),
    (lambda a: a["provenance"].update(seed=7), "provenance seed 7 != run seed 0"),
    (lambda a: a["provenance"].update(created_utc="2026-01-01T10:00:00+02:00"), "not in UTC"),
    (lambda a: a.update(domain_tags=["astrology"]), "domain_tags"),
    (lambda a: a.update(run_id="other"), "annotation is for run 'other'"),
])
def test_inconsistent_annotation_is_refused(annotated, edit, message):
    system, run, ann = annotated
    with pytest.raises(AnnotationError, match=re.escape(message)):
        system.validate(_broken(ann, edit), run)


def test_annotation_must_match_the_data(annotated, runs):
    system, run, ann = annotated
    with pytest.raises(AnnotationError, match="annotated but absent"):
        system.validate(dict(ann, run_id=runs[2].run_id), runs[2])  # run-0002 has no spectrum
    short = copy.copy(run)
    short.coords = dict(run.coords, lat_deg=run.coords["lat_deg"][:3])
    with pytest.raises(AnnotationError, match="coordinate lat_deg has 3 values but the datacube has 4"):
        system.validate(ann, short)
    with pytest.raises(AnnotationError, match="annotation missing"):
        system.validate(None, run)
