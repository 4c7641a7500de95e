/* placeholder until the CPU backend lands */
#include "sparq/backend.h"
