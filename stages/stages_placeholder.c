/* placeholder so the library has a source until the real ones land; delete then */
typedef int sq_stages_placeholder_t;
