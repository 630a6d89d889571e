#include "counters.h"

gh_counters_t gh_counters;
