// The PromQL selector extraction and Grafana substitution the compose test relies on.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dashboardExpressions, selectors, substitute, variableValues } from './promql.mjs';

test('selectors are the vector selectors, not functions, labels or durations', () => {
  assert.deepEqual(selectors('up{job="bridge"} == 0'), ['up{job="bridge"}']);
  assert.deepEqual(
    selectors('histogram_quantile(0.99, sum by (le, bridge) (rate(tutti_focus_join_seconds_bucket{job=~"f.*"}[5m])))'),
    ['tutti_focus_join_seconds_bucket{job=~"f.*"}'],
  );
  assert.deepEqual(
    selectors('sum(rate(a_total[1m] offset 5m)) by (instance) / on (instance) group_left(x) b > bool 1'),
    ['a_total', 'b'],
  );
  assert.deepEqual(selectors('label_replace(c{a="}"}, "dst", "$1", "src", "(.*)")'), ['c{a="}"}']);
  assert.deepEqual(selectors('absent(up{job="focus"}) or {__name__="x"}'), ['up{job="focus"}', '{__name__="x"}']);
  assert.deepEqual(selectors('max_over_time(d[5m:30s]) and e unless f'), ['d', 'e', 'f']);
  assert.deepEqual(selectors('topk(3, g) * 1e3 + inf'), ['g']);
});

test('Grafana variables are substituted as Grafana formats them', async () => {
  const dashboard = {
    templating: {
      list: [
        { name: 'datasource', type: 'datasource' },
        { name: 'bridge', type: 'query', query: { query: 'label_values(tutti_bridge_stress, instance)' }, includeAll: true },
        { name: 'one', type: 'query', query: 'label_values(up{instance=~"$bridge"}, job)' },
        { name: 'step', type: 'interval', options: [{ value: '1m' }], current: { value: '5m' } },
      ],
    },
    panels: [
      { title: 'a', targets: [{ expr: 'rate(x{instance=~"$bridge"}[$__rate_interval])' }] },
      { title: 'row', type: 'row', panels: [{ title: 'b', targets: [{ expr: 'y{job="${one}"}[$step]' }, { expr: '' }] }] },
    ],
  };
  const series = {
    tutti_bridge_stress: [{ instance: '10.0.0.2:10091' }, { instance: '10.0.0.3:10091' }],
    'up{instance=~"(10\\\\.0\\\\.0\\\\.2:10091|10\\\\.0\\\\.0\\\\.3:10091)"}': [{ job: 'bridge' }, { job: 'bridge' }],
  };
  const values = await variableValues(dashboard, async (selector) => series[selector] ?? []);
  assert.deepEqual(values.bridge, ['10.0.0.2:10091', '10.0.0.3:10091']);
  assert.deepEqual(values.one, ['bridge']);
  const exprs = dashboardExpressions(dashboard).map(({ expr }) => substitute(expr, values));
  assert.deepEqual(exprs, [
    'rate(x{instance=~"(10\\\\.0\\\\.0\\\\.2:10091|10\\\\.0\\\\.0\\\\.3:10091)"}[1m])',
    'y{job="bridge"}[5m]',
  ]);
  assert.throws(() => substitute('z{a="$nope"}', values), /\$nope is not defined/);
});
