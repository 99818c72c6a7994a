/* forward.c — model forward and backward over the layer pattern (placeholder, filled below). */
#include "layers/layers.h"
