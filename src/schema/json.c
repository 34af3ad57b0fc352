/* json.c - the scanner (being written); see json.h. */
#include "schema/json.h"
