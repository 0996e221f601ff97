// Scores cache-tests results as the suite's own display does (a test whose dependency failed,
// or whose setup had to be retried, is neither a pass nor a failure), and prints the same
// figures for the other caches whose results the suite ships.
//
//   node conformance/score.mjs SUITE_DIR RESULTS.json [MORE.json …]
import fs from 'fs'
import path from 'path'

const [suiteDir, ...files] = process.argv.slice(2)
const { default: suites } = await import(path.join(suiteDir, 'tests/index.mjs'))
const { determineTestResult } = await import(path.join(suiteDir, 'lib/display.mjs'))

function score (results) {
  const out = { required: [0, 0], optimal: [0, 0], failing: [] }
  for (const suite of suites) {
    for (const test of suite.tests) {
      const kind = test.kind || 'required'
      if (kind === 'check') continue
      out[kind][1]++
      const result = determineTestResult(suites, test.id, results)
      if (result[2] === '✅') out[kind][0]++
      else out.failing.push(`${kind} ${test.id} ${result[2]} ${JSON.stringify(results[test.id])}`)
    }
  }
  return out
}

const line = (name, s) =>
  console.log(`${name.padEnd(28)} required ${s.required[0]}/${s.required[1]}   optimal ${s.optimal[0]}/${s.optimal[1]}`)

for (const file of files) {
  const s = score(JSON.parse(fs.readFileSync(file, 'utf8')))
  line(`this crate (${path.basename(file, '.json')})`, s)
  for (const f of s.failing) console.log(`    ${f}`)
}
console.log('\npublished with the suite:')
const shipped = path.join(suiteDir, 'results')
for (const file of fs.readdirSync(shipped).filter(f => f.endsWith('.json')).sort()) {
  line(path.basename(file, '.json'), score(JSON.parse(fs.readFileSync(path.join(shipped, file), 'utf8'))))
}
