/**
 * The kubelet's `$(VAR)` expansion of a container's env values, command and args
 * (k8s.io/kubernetes third_party/forked/golang/expansion): `$$` → `$`, `$(NAME)` → NAME's value if
 * defined, else left as written; any other `$` stays. Pure.
 */
export function kubeletExpand(input: string, vars: Readonly<Record<string, string>> = {}): string {
  let at = input.indexOf('$');
  if (at === -1) return input;
  let out = '';
  let checkpoint = 0;
  while (at !== -1 && at + 1 < input.length) {
    out += input.slice(checkpoint, at);
    const next = input[at + 1];
    let end = at + 2;
    if (next === '$') out += '$';
    else if (next === '(') {
      const close = input.indexOf(')', at + 2);
      if (close === -1) out += '$(';
      else {
        const name = input.slice(at + 2, close);
        out += Object.hasOwn(vars, name) ? vars[name] : `$(${name})`;
        end = close + 1;
      }
    } else out += `$${next}`;
    checkpoint = end;
    at = input.indexOf('$', end);
  }
  return out + input.slice(checkpoint);
}
