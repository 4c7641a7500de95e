/* placeholder so the library has a source until the real ones land; delete then */
typedef int sq_runtime_placeholder_t;
