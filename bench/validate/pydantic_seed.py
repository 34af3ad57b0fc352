#!/usr/bin/python3
"""pydantic_seed.py - the seed design's per-line validation, as a peer of
`weir validate` (Debian's python3-pydantic 1.10, pure Python).

    /usr/bin/python3 bench/validate/pydantic_seed.py FILE

For each line of FILE: TelemetryData.parse_raw(line), the step the seed's
TCP handler runs per record (shared/seeds/001_*.txt), counting valid and
invalid. Prints "N valid, M invalid" on stderr like weir validate and exits
1 when some line is invalid. --dump also re-serialises each valid record
(model.json()), as the seed's handler does before writing it.

The seed targets pydantic 2 with validate_json(strict=True); Debian 12 ships
pydantic 1.10, so the model is made strict where v1 allows, exactly as the
research peer (shared/research/peers-measured-here.md, 4.1): StrictInt for
timestamp and sensor_id, Union[StrictFloat, StrictStr] for value plus a
pre-validator that turns a JSON integer into a float (pydantic 2 accepts an
int for a float even in strict mode, v1's StrictFloat does not), and enums
for kind and unit. Missing fields, wrong types, bad JSON and bad UTF-8 are
all rejected, as by the JSON Schema peers.
"""
import sys
from enum import Enum
from typing import Union

import pydantic
from pydantic import BaseModel, StrictFloat, StrictInt, StrictStr, validator


class MeasurementUnit(str, Enum):
    CELCIUS = "Celcius"
    FAHRENHEIT = "Fahrenheit"


class MeasurementKind(str, Enum):
    TEMPERATURE = "Temperature"


class Measurement(BaseModel):
    kind: MeasurementKind
    value: Union[StrictFloat, StrictStr]
    unit: MeasurementUnit

    @validator("value", pre=True)
    def int_is_float(cls, v):  # noqa: N805 (pydantic's signature)
        if type(v) is int:
            return float(v)
        return v


class TelemetryData(BaseModel):
    timestamp: StrictInt
    sensor_id: StrictInt
    measurement: Measurement


def main(argv):
    dump = "--dump" in argv
    args = [a for a in argv if a != "--dump"]
    if len(args) != 1:
        sys.stderr.write("usage: pydantic_seed.py [--dump] FILE\n")
        return 2
    if not pydantic.VERSION.startswith("1."):
        sys.stderr.write("pydantic_seed.py: wants pydantic 1.x (Debian's "
                         "python3-pydantic), found %s\n" % pydantic.VERSION)
        return 2
    parse = TelemetryData.parse_raw
    error = pydantic.ValidationError
    valid = invalid = 0
    with open(args[0], "rb") as f:
        for line in f:
            if line == b"\n":
                continue
            try:
                model = parse(line)
            except error:
                invalid += 1
                continue
            if dump:
                model.json()
            valid += 1
    sys.stderr.write("%d valid, %d invalid\n" % (valid, invalid))
    return 1 if invalid else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
