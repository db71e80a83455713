// What the compose test needs of PromQL and Grafana: the vector selectors of an expression,
// and a dashboard's expressions with its variables substituted as Grafana would.

const AGGREGATIONS = new Set([
  'sum', 'min', 'max', 'avg', 'group', 'stddev', 'stdvar', 'count', 'count_values', 'bottomk',
  'topk', 'quantile', 'limitk', 'limit_ratio',
]);
const GROUPING = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);
const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'atan2', 'inf', 'nan']);

/** Splits a PromQL expression into tokens: strings, {…} and […] blocks, names, the rest. */
function tokenize(expr) {
  const tokens = [];
  let i = 0;
  const closing = (open, close) => {
    let depth = 0;
    let j = i;
    for (; j < expr.length; j += 1) {
      const c = expr[j];
      if (c === '"' || c === "'" || c === '`') {
        j = endOfString(expr, j);
      } else if (c === open) {
        depth += 1;
      } else if (c === close) {
        depth -= 1;
        if (depth === 0) {
          return j + 1;
        }
      }
    }
    throw new Error(`unbalanced ${open} in ${expr}`);
  };
  while (i < expr.length) {
    const c = expr[i];
    if (/\s/.test(c)) {
      i += 1;
    } else if (c === '#') {
      while (i < expr.length && expr[i] !== '\n') i += 1;
    } else if (c === '"' || c === "'" || c === '`') {
      const end = endOfString(expr, i) + 1;
      tokens.push({ kind: 'string', text: expr.slice(i, end) });
      i = end;
    } else if (c === '{') {
      const end = closing('{', '}');
      tokens.push({ kind: 'matchers', text: expr.slice(i, end) });
      i = end;
    } else if (c === '[') {
      const end = closing('[', ']');
      tokens.push({ kind: 'range', text: expr.slice(i, end) });
      i = end;
    } else if (/[A-Za-z_:]/.test(c)) {
      const match = /^[A-Za-z_:][A-Za-z0-9_:]*/.exec(expr.slice(i));
      tokens.push({ kind: 'name', text: match[0] });
      i += match[0].length;
    } else if (/[0-9.]/.test(c)) {
      const match = /^[0-9.][0-9A-Za-z.+]*/.exec(expr.slice(i));
      tokens.push({ kind: 'number', text: match[0] });
      i += match[0].length;
    } else {
      tokens.push({ kind: 'punct', text: c });
      i += 1;
    }
  }
  return tokens;
}

function endOfString(expr, start) {
  const quote = expr[start];
  for (let j = start + 1; j < expr.length; j += 1) {
    if (quote !== '`' && expr[j] === '\\') {
      j += 1;
    } else if (expr[j] === quote) {
      return j;
    }
  }
  throw new Error(`unterminated string in ${expr}`);
}

/**
 * The vector selectors of a PromQL expression, as `name{matchers}` / `{matchers}` texts (no
 * ranges, offsets or functions), in order and without repeats.
 */
export function selectors(expr) {
  const tokens = tokenize(expr);
  const found = [];
  for (let i = 0; i < tokens.length; i += 1) {
    const token = tokens[i];
    const next = tokens[i + 1];
    if (token.kind === 'name') {
      const name = token.text;
      if (GROUPING.has(name)) {
        if (next?.text === '(') {
          i = skipParens(tokens, i + 1);
        }
      } else if (name === 'offset') {
        i += 1;
      } else if (AGGREGATIONS.has(name) || KEYWORDS.has(name) || next?.text === '(') {
        // An operator or function: what it applies to follows.
      } else if (next?.kind === 'matchers') {
        found.push(`${name}${next.text}`);
        i += 1;
      } else {
        found.push(name);
      }
    } else if (token.kind === 'matchers') {
      found.push(token.text);
    }
  }
  return [...new Set(found)];
}

function skipParens(tokens, open) {
  let depth = 0;
  for (let j = open; j < tokens.length; j += 1) {
    if (tokens[j].text === '(') depth += 1;
    if (tokens[j].text === ')') {
      depth -= 1;
      if (depth === 0) return j;
    }
  }
  throw new Error('unbalanced ( in a grouping clause');
}

// Grafana's built-in interval variables, at what Grafana gives them for a short time range with
// a 5 s scrape interval.
const BUILTINS = {
  __rate_interval: '1m',
  __interval: '15s',
  __interval_ms: '15000',
  __range: '1h',
  __range_s: '3600',
  __range_ms: '3600000',
};

// As Grafana escapes a value for a regex inside a PromQL string: the backslash doubled, because
// the string literal takes one away.
function escapeRegex(value) {
  return value.replace(/[\\^$.|?*+()[\]{}]/g, '\\\\$&');
}

/**
 * Every Prometheus expression of a dashboard (panels, rows and their panels, library of nested
 * rows), with `{ panel, expr }`.
 */
export function dashboardExpressions(dashboard) {
  const out = [];
  const visit = (panels) => {
    for (const panel of panels ?? []) {
      for (const target of panel.targets ?? []) {
        if (typeof target.expr === 'string' && target.expr.trim()) {
          out.push({ panel: panel.title ?? `panel ${panel.id}`, expr: target.expr });
        }
      }
      visit(panel.panels);
    }
  };
  visit(dashboard.panels);
  for (const row of dashboard.rows ?? []) {
    visit(row.panels);
  }
  return out;
}

/**
 * Substitutes Grafana's variables in `expr`: the built-in intervals, and each of `values`
 * (name -> list of values): one value as it is, several (a multi-value or "All" variable) as a
 * regex alternation, as Grafana formats them for Prometheus.
 */
export function substitute(expr, values) {
  const valueOf = (name) => {
    if (Object.hasOwn(BUILTINS, name)) {
      return BUILTINS[name];
    }
    if (!Object.hasOwn(values, name)) {
      throw new Error(`variable $${name} is not defined by the dashboard`);
    }
    const list = values[name];
    return list.length === 1 ? list[0] : `(${list.map(escapeRegex).join('|')})`;
  };
  return expr
    .replace(/\$\{([A-Za-z0-9_]+)(?::[^}]*)?\}/g, (_, name) => valueOf(name))
    .replace(/\[\[([A-Za-z0-9_]+)(?::[^\]]*)?\]\]/g, (_, name) => valueOf(name))
    .replace(/\$([A-Za-z0-9_]+)/g, (_, name) => valueOf(name));
}

/**
 * The values of a dashboard's template variables, as Grafana would pick them: a query variable
 * (`label_values(SELECTOR, LABEL)` / `label_values(LABEL)`) takes the label's values from
 * Prometheus (`seriesOf(selector)` gives series as label maps), all of them when it is
 * multi-value or has "All", else the first; custom/constant/interval/textbox variables their
 * current or first value. Data source variables are left out (not in expressions).
 */
export async function variableValues(dashboard, seriesOf) {
  const values = {};
  for (const variable of dashboard.templating?.list ?? []) {
    const { name, type } = variable;
    if (type === 'datasource' || type === 'adhoc') {
      continue;
    }
    if (type === 'query') {
      const query = typeof variable.query === 'string' ? variable.query : variable.query?.query ?? '';
      const match = /^\s*label_values\(\s*(?:(.*),\s*)?([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$/.exec(query);
      if (!match) {
        throw new Error(`variable ${name}: query ${JSON.stringify(query)} is not label_values(…)`);
      }
      const selector = match[1] ? substitute(match[1], values) : `{${match[2]}!=""}`;
      const found = [...new Set((await seriesOf(selector)).map((s) => s[match[2]]).filter(Boolean))].sort();
      if (found.length === 0) {
        throw new Error(`variable ${name}: label_values(${selector}, ${match[2]}) has no values`);
      }
      values[name] = variable.multi || variable.includeAll ? found : [found[0]];
    } else {
      const current = variable.current?.value;
      const first = variable.options?.[0]?.value
        ?? String(variable.query ?? '').split(',')[0].trim();
      const picked = current === '$__all' ? undefined : current;
      values[name] = [].concat(picked ?? first);
    }
  }
  return values;
}
