#!/usr/bin/env python3
"""pydantic2_seed.py - the seed design's per-line step with pydantic 2, an
optional peer of `weir validate`.

    python3 bench/validate/pydantic2_seed.py FILE

The seed's own code (shared/seeds/001_*.txt): the model with StrEnums and
`value: float | str`, TypeAdapter(TelemetryData).validate_json(line,
strict=True) per line, counting valid and invalid; "N valid, M invalid" on
stderr, exit 1 when some line is invalid. --dump also runs
model_dump_json() on each valid record, as the seed's handler does.

Debian 12 has no pydantic 2, so this peer runs only where a python3 with
pydantic 2 is on PATH (run.sh skips it otherwise, and says so). It needs
Python 3.11 or later (StrEnum).
"""
import sys
from enum import StrEnum

import pydantic
from pydantic import BaseModel, TypeAdapter


class MeasurementUnit(StrEnum):
    CELCIUS = "Celcius"
    FAHRENHEIT = "Fahrenheit"


class MeasurementKind(StrEnum):
    TEMPERATURE = "Temperature"


class Measurement(BaseModel):
    kind: MeasurementKind
    value: float | str
    unit: MeasurementUnit


class TelemetryData(BaseModel):
    timestamp: int
    sensor_id: int
    measurement: Measurement


def main(argv):
    dump = "--dump" in argv
    args = [a for a in argv if a != "--dump"]
    if len(args) != 1:
        sys.stderr.write("usage: pydantic2_seed.py [--dump] FILE\n")
        return 2
    validate = TypeAdapter(TelemetryData).validate_json
    error = pydantic.ValidationError
    valid = invalid = 0
    with open(args[0], "rb") as f:
        for line in f:
            if line == b"\n":
                continue
            try:
                model = validate(line, strict=True)
            except error:
                invalid += 1
                continue
            if dump:
                model.model_dump_json()
            valid += 1
    sys.stderr.write("%d valid, %d invalid\n" % (valid, invalid))
    return 1 if invalid else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
