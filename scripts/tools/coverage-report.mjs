// Coverage gate for the Solidity contracts in contracts/ (contracts/test/** excluded): prints line and branch coverage
// per file and exits 1 when either is below 95% for any file (2 when its inputs are missing or inconsistent). Run it
// after `hardhat test --coverage`; `npm run coverage` runs both.
//
// Inputs, all written by `hardhat test --coverage`:
//   coverage/lcov.info             Hardhat's per-line results. The Lines column is copied from it unchanged.
//   coverage/data/<runner>/*.json  { statementTag: runs that hit it } for each test runner (mocha, solidity).
//
// Why branches need work here: Hardhat 3.18 records statement hits only. EDR's addStatementCoverageInstrumentation
// puts a `sendHit(tag)` before every statement, and inside every if/else body; the lcov has no BRDA lines. The
// tag -> source range table is kept in memory and not saved, so this script rebuilds it by calling the same EDR
// function with the same arguments as Hardhat (source name "project/<path>", the compiler version capped at EDR's
// latest); tags are deterministic, and a cross-check against lcov.info stops the report if they do not line up.
//
// What counts as a branch: every outcome of a decision (decision coverage, not condition coverage):
//   if (c) A else B      two arms, true and false; an `if` without `else` still has a false arm
//   c ? a : b            two arms, true and false
//   require(c) assert(c) two arms, pass and fail
//   try ... catch        one arm per clause: the success block and each catch clause
// Not branches: the operands of && and || (conditions inside a decision) and loop conditions.
//
// Each arm is HIT, MISSED or UNKNOWN, from statement hits only:
//   1. If the decision itself never ran (for `?:`, the innermost statement around it), every arm is MISSED.
//   2. Otherwise the arm's witness decides: HIT if the witness statement ran at least once, else MISSED.
//      - The witness is the arm's body when EDR tagged it (every if/else body is tagged, even `{}`), or the first
//        statement of a try/catch block (EDR does not tag those blocks). Running it means the arm was entered.
//      - An arm with no body (the false arm of an `if` without `else`, an empty try/catch block, the pass arm of
//        require/assert) uses the statement that follows the decision in the same block, but only when no other
//        arm can finish normally (each ends in return, revert, break or continue; a fail arm always reverts). Then
//        that next statement runs exactly when this arm was taken.
//   3. An arm without a body and without such a witness is HIT when hit counts prove it ran (see provenByCounts):
//      more arrivals at the next statement than entries into the other arms, or, when the other arms always leave
//      and the condition cannot revert, more evaluations of the decision than entries into the other arms.
//   4. Any other arm is UNKNOWN: `?:` arms, the fail arm of require/assert, and arms without a body that rule 3
//      cannot prove. Hit data cannot tell whether they ran; they are listed so a reviewer can check them, and left
//      out of the percentage.
// Branch % = HIT / (HIT + MISSED). Rules 1 and 2 are sound both ways: HIT proves the arm ran, MISSED proves it never
// ran (within the recorded runs). Rule 3 only ever proves HIT, never MISSED.
//
// Limits: it reads every data set under coverage/data, as `npm run coverage` refreshes all of them. Files without
// executable statements (interfaces) are skipped.

import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const MIN_PERCENT = 95;
const CONTRACTS_DIR = "contracts";
const EXCLUDED_DIR = "contracts/test/";
const LCOV_FILE = "coverage/lcov.info";
const DATA_DIR = "coverage/data";

// EDR and solc exactly as Hardhat loads them, so the tags match the ones recorded during the tests.
const hardhatRequire = createRequire(import.meta.resolve("hardhat"));
const edr = hardhatRequire("@nomicfoundation/edr");
const solc = createRequire(import.meta.url)("solc");

main();

function main() {
  const files = listSolidityFiles(CONTRACTS_DIR).filter((file) => !file.startsWith(EXCLUDED_DIR));
  const lcov = readLcov(LCOV_FILE);
  const hitTags = readHitTags(DATA_DIR);
  const instrumentationVersion = getInstrumentationVersion();

  const reports = [];
  for (const file of files) {
    const source = readFileSync(file, "utf8");
    const statements = instrumentStatements(source, file, instrumentationVersion);
    if (statements.size === 0) continue;
    const lines = lcov.get(file);
    if (lines === undefined) fail(`${LCOV_FILE} has no entry for ${file}: was it left out of the coverage run?`);
    if (statSync(file).mtimeMs > statSync(LCOV_FILE).mtimeMs) {
      fail(`${file} changed after ${LCOV_FILE} was written: run \`npm run coverage\` again.`);
    }
    checkAgainstLcov(file, source, statements, hitTags, lines);
    const arms = classifyArms(file, source, statements, hitTags);
    reports.push({ file, lines, arms });
  }
  if (reports.length === 0) fail(`no Solidity statements found under ${CONTRACTS_DIR}/`);
  process.exitCode = printReport(reports) ? 0 : 1;
}

// ---------------------------------------------------------------------------------------------------------- inputs

function listSolidityFiles(dir) {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((entry) => {
      const file = `${dir}/${entry.name}`;
      if (entry.isDirectory()) return listSolidityFiles(file);
      return entry.name.endsWith(".sol") ? [file] : [];
    })
    .sort();
}

/** @returns {Map<string, Map<number, number>>} file -> line -> execution count (Hardhat writes 0 or 1). */
function readLcov(file) {
  if (!existsSync(file)) fail(`${file} not found: run \`npm run coverage\` (hardhat test --coverage) first.`);
  const result = new Map();
  let lines;
  for (const record of readFileSync(file, "utf8").split("\n")) {
    if (record.startsWith("SF:")) {
      lines = new Map();
      result.set(record.slice(3).split(path.sep).join("/"), lines);
    } else if (record.startsWith("DA:")) {
      const [line, count] = record.slice(3).split(",").map(Number);
      if (lines === undefined || !Number.isInteger(line) || !Number.isInteger(count)) {
        fail(`${file}: malformed record "${record}"`);
      }
      lines.set(line, count);
    }
  }
  return result;
}

/** @returns {Map<string, number>} hex tag -> hits, summed over the data sets, for statements that ran at all. */
function readHitTags(dir) {
  const files = existsSync(dir)
    ? readdirSync(dir, { recursive: true })
        .filter((name) => name.endsWith(".json"))
        .map((name) => path.join(dir, name))
    : [];
  if (files.length === 0) fail(`no hit data in ${dir}: run \`npm run coverage\` (hardhat test --coverage) first.`);
  const tags = new Map();
  for (const file of files) {
    const data = JSON.parse(readFileSync(file, "utf8"));
    for (const [tag, count] of Object.entries(data)) {
      if (!Number.isInteger(count) || count < 0) fail(`${file}: the count for ${tag} is not a whole number`);
      if (count > 0) tags.set(tag, (tags.get(tag) ?? 0) + count);
    }
  }
  return tags;
}

// The project compiles with the npm `solc` package (see hardhat.config.ts); Hardhat instruments with that version,
// capped at the newest one EDR's parser supports.
function getInstrumentationVersion() {
  const compiler = /^(\d+)\.(\d+)\.(\d+)/.exec(solc.version());
  const latest = /^(\d+)\.(\d+)\.(\d+)/.exec(edr.latestSupportedSolidityVersion());
  if (compiler === null || latest === null) fail(`unexpected solc or EDR version: ${solc.version()}`);
  const [a, b] = [compiler, latest].map((m) => m.slice(1, 4).map(Number));
  const compilerIsNewer = a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
  return (compilerIsNewer > 0 ? latest : compiler)[0];
}

// ------------------------------------------------------------------------------------------------------ statements

/**
 * The statements EDR tags in `source`, keyed by where their code starts. EDR's ranges include the whitespace and
 * comments before a statement; skipping them gives the offset solc reports for the same statement.
 * @returns {Map<number, {tag: string, start: number, end: number}>} UTF-16 offset -> statement.
 */
function instrumentStatements(source, file, version) {
  const { metadata } = edr.addStatementCoverageInstrumentation(source, `project/${file}`, version);
  const statements = new Map();
  for (const entry of metadata) {
    if (entry.kind !== "statement") continue;
    const start = skipTrivia(source, entry.startUtf16);
    if (statements.has(start)) fail(`${file}: two EDR statements start at offset ${start}`);
    statements.set(start, { tag: Buffer.from(entry.tag).toString("hex"), start, end: entry.endUtf16 });
  }
  return statements;
}

function skipTrivia(source, offset) {
  let i = offset;
  for (;;) {
    while (i < source.length && /\s/.test(source[i])) i++;
    if (source.startsWith("//", i)) {
      const newline = source.indexOf("\n", i);
      i = newline === -1 ? source.length : newline + 1;
    } else if (source.startsWith("/*", i)) {
      const close = source.indexOf("*/", i + 2);
      i = close === -1 ? source.length : close + 2;
    } else {
      return i;
    }
  }
}

// The rebuilt tags must tell the same story as Hardhat's lcov: a line it reports as not executed lies within a
// statement seen here as not executed, and such a statement's first line (unless it starts with `{`, which Hardhat
// ignores) is reported as not executed. Otherwise the sources or EDR differ from the run and nothing here is reliable.
function checkAgainstLcov(file, source, statements, hitTags, lcovLines) {
  const lineOf = lineLocator(source);
  const stale = (line, why) =>
    fail(
      `${file}:${line} ${why}. Stale or partial data (e.g. \`hardhat test mocha --coverage\`)? Run \`npm run coverage\`.`,
    );
  const missedLines = new Set();
  for (const statement of statements.values()) {
    if (hitTags.has(statement.tag)) continue;
    const [first, last] = [lineOf(statement.start), lineOf(Math.max(statement.start, statement.end - 1))];
    for (let line = first; line <= last; line++) missedLines.add(line);
    if (source[statement.start] !== "{" && lcovLines.get(first) !== 0) {
      stale(first, `starts a statement without hits but is not uncovered in ${LCOV_FILE}`);
    }
  }
  for (const [line, count] of lcovLines) {
    if (count === 0 && !missedLines.has(line)) stale(line, `is uncovered in ${LCOV_FILE} but all its statements ran`);
  }
}

// -------------------------------------------------------------------------------------------------------- branches

/** @returns {{line: number, kind: string, arm: string, status: "hit" | "missed" | "unknown", code: string}[]} */
function classifyArms(file, source, statements, hitTags) {
  const ast = parse(file, source);
  const toUtf16 = byteToUtf16Offsets(source);
  const lineOf = lineLocator(source);
  // solc's `src` is "byteStart:byteLength:fileIndex".
  const startOf = (node) => toUtf16[Number(node.src.split(":")[0])];
  const endOf = (node) => toUtf16[Number(node.src.split(":")[0]) + Number(node.src.split(":")[1])];
  // Only statements carry tags; an expression starting where a statement starts lies inside that statement.
  const tagged = (node) => statements.get(startOf(node));
  const ran = (statement) => hitTags.has(statement.tag);
  const hits = (statement) => hitTags.get(statement.tag) ?? 0;
  const arms = [];

  // The tagged statement that runs exactly when `node` is entered: its own tag, or a block's first statement.
  const witnessOf = (node) => {
    if (node === null) return undefined;
    const own = tagged(node);
    if (own !== undefined) return own;
    if (isBlock(node) && node.statements.length > 0) return witnessOf(node.statements[0]);
    return undefined;
  };

  // `decision` is the tagged statement that runs whenever the decision is evaluated; `next` follows it in its block.
  const addDecision = (node, kind, decision, next, branches) => {
    // Only a `?:` may sit outside every tagged statement (a state variable initializer); its arms stay unknown.
    if (decision === undefined && kind !== "?:") fail(`${file}:${lineOf(startOf(node))}: EDR did not tag this ${kind}`);
    const code = source.slice(startOf(node), endOf(node)).split("\n")[0].trim();
    for (const [index, branch] of branches.entries()) {
      const others = branches.filter((_, i) => i !== index);
      let witness = branch.body === undefined ? undefined : witnessOf(branch.body);
      if (witness === undefined && branch.body !== undefined && next !== null && others.every(cannotFinish)) {
        witness = witnessOf(next);
      }
      let status = witness === undefined ? "unknown" : ran(witness) ? "hit" : "missed";
      if (status === "unknown" && branch.body === null && decision !== undefined) {
        status = provenByCounts(node, decision, next, others) ? "hit" : "unknown";
      }
      if (decision !== undefined && !ran(decision)) status = "missed";
      const line = lineOf(branch.body ? startOf(branch.body) : startOf(node));
      arms.push({ line, kind, arm: branch.name, status, code });
    }
  };

  // Rule 3 (counts) for an arm without a body whose alternatives all have witnesses (their entries are counted):
  //  a. `next` follows the decision in its block, so every arrival at `next` comes from this arm or from an
  //     alternative that fell through, and those are at most the alternatives' entries. More arrivals at `next` than
  //     entries into all alternatives prove this arm ran. Sound whether a count is of executions or of runs.
  //  b. Every alternative always leaves (return, revert, ...), and the decision is an `if` whose condition cannot
  //     revert (no calls, no arithmetic): then every evaluation that entered no alternative took this arm, so more
  //     evaluations than entries prove it ran.
  const provenByCounts = (node, decision, next, others) => {
    const witnesses = others.map((other) => (other.body ? witnessOf(other.body) : undefined));
    if (witnesses.some((witness) => witness === undefined)) return false;
    const entered = witnesses.reduce((sum, witness) => sum + hits(witness), 0);
    const nextWitness = next === null ? undefined : witnessOf(next);
    if (nextWitness !== undefined && hits(nextWitness) > entered) return true;
    return (
      node.nodeType === "IfStatement" &&
      others.every(cannotFinish) &&
      cannotRevert(node.condition) &&
      hits(decision) > entered
    );
  };

  // `next` is the statement after `node` in the enclosing block (null if none); `around` is the innermost tagged
  // statement containing `node`.
  const visit = (node, next, around) => {
    if (node === null || typeof node !== "object") return;
    if (Array.isArray(node)) return node.forEach((child) => visit(child, null, around));
    const here = node.nodeType !== undefined && tagged(node) !== undefined ? tagged(node) : around;

    if (node.nodeType === "IfStatement") {
      // A missing else is an empty body: taken when the if finishes without running the true body.
      addDecision(node, "if", here, next, [
        { name: "true", body: node.trueBody },
        { name: "false", body: node.falseBody ?? null },
      ]);
    } else if (node.nodeType === "TryStatement") {
      addDecision(
        node,
        "try",
        here,
        next,
        node.clauses.map((clause, i) => ({
          name: i === 0 ? "success" : `catch ${clause.errorName || "(any)"}`,
          body: clause.block.statements.length > 0 ? clause.block : null,
        })),
      );
    } else if (node.nodeType === "ExpressionStatement" && isCall(node.expression, ["require", "assert"])) {
      addDecision(node, node.expression.expression.name, here, next, [
        { name: "pass", body: null },
        { name: "fail", body: undefined, alwaysReverts: true },
      ]);
    } else if (node.nodeType === "Conditional") {
      addDecision(node, "?:", here, null, [
        { name: "true", body: undefined },
        { name: "false", body: undefined },
      ]);
    }

    if (isBlock(node)) {
      node.statements.forEach((statement, i) => visit(statement, node.statements[i + 1] ?? null, here));
      return;
    }
    for (const [key, value] of Object.entries(node)) {
      if (key !== "src" && key !== "statements") visit(value, null, here);
    }
  };

  visit(ast, null, undefined);
  return arms.sort((a, b) => a.line - b.line);
}

// A branch (or statement) cannot finish normally when every path through it leaves by return, revert, break or
// continue. Anything not provably so (inline assembly, calls that always revert) counts as able to finish.
function cannotFinish(branch) {
  if (branch.alwaysReverts) return true;
  return branch.body === null || branch.body === undefined ? false : neverFallsThrough(branch.body);
}

function neverFallsThrough(node) {
  switch (node.nodeType) {
    case "Return":
    case "RevertStatement":
    case "Break":
    case "Continue":
      return true;
    case "ExpressionStatement":
      return isCall(node.expression, ["revert"]);
    case "Block":
    case "UncheckedBlock":
      return node.statements.some(neverFallsThrough);
    case "IfStatement":
      return node.falseBody != null && neverFallsThrough(node.trueBody) && neverFallsThrough(node.falseBody);
    default:
      return false;
  }
}

// An expression that evaluates without reverting: reads, literals, comparisons, boolean operators and type
// conversions only. Calls, arithmetic (checked overflow), indexing of arrays (bounds) and anything else do not qualify.
function cannotRevert(node) {
  switch (node.nodeType) {
    case "Identifier":
    case "Literal":
      return true;
    case "MemberAccess":
      return cannotRevert(node.expression);
    case "IndexAccess":
      return (
        node.baseExpression.typeDescriptions?.typeString?.startsWith("mapping") === true &&
        cannotRevert(node.baseExpression) &&
        cannotRevert(node.indexExpression)
      );
    case "UnaryOperation":
      return node.operator === "!" && cannotRevert(node.subExpression);
    case "BinaryOperation":
      return (
        ["==", "!=", "<", "<=", ">", ">=", "&&", "||"].includes(node.operator) &&
        cannotRevert(node.leftExpression) &&
        cannotRevert(node.rightExpression)
      );
    case "TupleExpression":
      return node.components.length === 1 && cannotRevert(node.components[0]);
    default:
      return false;
  }
}

function isBlock(node) {
  return node.nodeType === "Block" || node.nodeType === "UncheckedBlock";
}

function isCall(expression, names) {
  return (
    expression?.nodeType === "FunctionCall" &&
    expression.expression.nodeType === "Identifier" &&
    names.includes(expression.expression.name)
  );
}

// solc's own parser; no imports or types are needed to find decisions and statements.
function parse(file, source) {
  const input = {
    language: "Solidity",
    sources: { [file]: { content: source } },
    settings: { stopAfter: "parsing", outputSelection: { "*": { "": ["ast"] } } },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const errors = (output.errors ?? []).filter((error) => error.severity === "error");
  if (errors.length > 0) fail(`${file} does not parse:\n${errors.map((e) => e.formattedMessage).join("\n")}`);
  return output.sources[file].ast;
}

// solc reports UTF-8 byte offsets, EDR UTF-16 ones.
function byteToUtf16Offsets(source) {
  const offsets = [];
  let utf16 = 0;
  for (const char of source) {
    for (let i = 0; i < Buffer.byteLength(char); i++) offsets.push(utf16);
    utf16 += char.length;
  }
  offsets.push(utf16);
  return offsets;
}

function lineLocator(source) {
  const starts = [0];
  for (let i = 0; i < source.length; i++) if (source[i] === "\n") starts.push(i + 1);
  return (offset) => {
    let [low, high] = [0, starts.length - 1];
    while (low < high) {
      const mid = Math.ceil((low + high) / 2);
      if (starts[mid] <= offset) low = mid;
      else high = mid - 1;
    }
    return low + 1;
  };
}

// ---------------------------------------------------------------------------------------------------------- output

/** Prints the table and the arms to look at. @returns {boolean} true when every file meets MIN_PERCENT. */
function printReport(reports) {
  const rows = reports.map(({ file, lines, arms }) => {
    const linesHit = [...lines.values()].filter((count) => count > 0).length;
    const branchesHit = arms.filter((arm) => arm.status === "hit").length;
    const branchesMeasured = arms.filter((arm) => arm.status !== "unknown").length;
    return {
      file,
      lines: ratio(linesHit, lines.size),
      branches: ratio(branchesHit, branchesMeasured),
      unknown: arms.length - branchesMeasured,
    };
  });

  const header = ["File", "Lines", "Branches", "Unknown"];
  const table = [header, ...rows.map((r) => [r.file, r.lines.text, r.branches.text, String(r.unknown)])];
  const widths = header.map((_, column) => Math.max(...table.map((row) => row[column].length)));
  console.log(`\nContract coverage (${CONTRACTS_DIR}/, without ${EXCLUDED_DIR}**), minimum ${MIN_PERCENT}%.`);
  console.log(
    "Branches: decision outcomes taken / observable. Unknown: outcomes hit data cannot observe, not counted.",
  );
  for (const [i, row] of table.entries()) {
    console.log("  " + row.map((cell, column) => cell.padEnd(widths[column])).join("  "));
    if (i === 0) console.log("  " + widths.map((width) => "-".repeat(width)).join("  "));
  }

  const listArms = (title, status) => {
    const found = reports.flatMap(({ file, arms }) => arms.filter((a) => a.status === status).map((a) => [file, a]));
    if (found.length === 0) return;
    console.log(`\n${title}`);
    for (const [file, arm] of found) console.log(`  ${file}:${arm.line}  ${arm.kind} ${arm.arm}  ${arm.code}`);
  };
  listArms("Branches never taken:", "missed");
  listArms("Branches hit data cannot observe (not counted; check by reading the tests):", "unknown");

  const failures = rows.flatMap((r) =>
    [
      ["lines", r.lines],
      ["branches", r.branches],
    ]
      .filter(([, value]) => !value.passes)
      .map(([metric, value]) => `${r.file}: ${metric} ${value.text} is below ${MIN_PERCENT}%`),
  );
  console.log();
  for (const failure of failures) console.error(`FAIL ${failure}`);
  if (failures.length === 0) console.log(`All contracts meet ${MIN_PERCENT}% line and branch coverage.`);
  return failures.length === 0;
}

// Exact integer comparison, so 94.996% never rounds up to a pass.
function ratio(hit, total) {
  if (total === 0) return { text: "-", passes: true };
  return { text: `${hit}/${total} ${((hit * 100) / total).toFixed(2)}%`, passes: hit * 100 >= MIN_PERCENT * total };
}

function fail(message) {
  console.error(`coverage-report: ${message}`);
  process.exit(2);
}
