import re, sys
src = open(sys.argv[1]).read()
# kernel<T><<<grid, block, shmem, stream>>>(args);  ->  sq_emu_launch(dim3(grid), dim3(block), [&] { kernel<T>(args); });
pat = re.compile(r'([A-Za-z_][\w:]*(?:<[^<>;()]*>)?)<<<(.*?)>>>\((.*?)\);', re.S)
def rep(m):
    name, cfg, args = m.group(1), m.group(2), m.group(3)
    parts = [p.strip() for p in cfg.split(',')]
    # split top-level commas only
    depth = 0; cur = ''; parts = []
    for ch in cfg:
        if ch in '([': depth += 1
        if ch in ')]': depth -= 1
        if ch == ',' and depth == 0: parts.append(cur); cur = ''
        else: cur += ch
    parts.append(cur)
    return 'sq_emu_launch(dim3(%s), dim3(%s), [&] { %s(%s); });' % (parts[0].strip(), parts[1].strip(), name, args)
out = pat.sub(rep, src)
if '<<<' in out: sys.exit('untransformed launch in ' + sys.argv[1])
open(sys.argv[2], 'w').write(out)
