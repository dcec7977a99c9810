#!/usr/bin/env node
// Compile SetRegistry.sol with the solc-js pinned in package.json (standard JSON input) and
// write SetRegistry.json. `--stdout` prints the fresh artifact instead of writing it;
// `--check` exits 1 if the committed artifact differs from a fresh compile.
"use strict";

const crypto = require("crypto");
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const CONTRACT_NAME = "SetRegistry";
const SOURCE_FILE = `${CONTRACT_NAME}.sol`;
const SOURCE_PATH = path.join(__dirname, SOURCE_FILE);
const ARTIFACT_PATH = path.join(__dirname, `${CONTRACT_NAME}.json`);

// paris: no PUSH0/MCOPY, so the bytecode runs on ganache 7 (shanghai at most) and any L2.
const SETTINGS = {
  evmVersion: "paris",
  optimizer: { enabled: true, runs: 200 },
  metadata: { bytecodeHash: "ipfs" },
  outputSelection: {
    [SOURCE_FILE]: { [CONTRACT_NAME]: ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] },
  },
};

function pragmaVersion(source) {
  const match = source.match(/^pragma solidity (\d+\.\d+\.\d+);$/m);
  if (!match) throw new Error(`${SOURCE_FILE} must pin an exact compiler: pragma solidity X.Y.Z;`);
  return match[1];
}

function compile() {
  const source = fs.readFileSync(SOURCE_PATH, "utf8");
  const pinned = pragmaVersion(source);
  const version = solc.version();
  if (!version.startsWith(`${pinned}+`)) {
    throw new Error(`solc ${version} does not match pragma ${pinned}; run npm ci --prefix contracts`);
  }
  const input = { language: "Solidity", sources: { [SOURCE_FILE]: { content: source } }, settings: SETTINGS };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const errors = (output.errors || []).filter((e) => e.severity === "error");
  if (errors.length > 0) {
    throw new Error(errors.map((e) => e.formattedMessage).join("\n"));
  }
  const contract = output.contracts[SOURCE_FILE][CONTRACT_NAME];
  const { outputSelection, ...recordedSettings } = SETTINGS;
  return {
    contractName: CONTRACT_NAME,
    abi: contract.abi,
    bytecode: `0x${contract.evm.bytecode.object}`,
    deployedBytecode: `0x${contract.evm.deployedBytecode.object}`,
    compiler: { name: "solc", version, settings: recordedSettings },
    source_sha256: crypto.createHash("sha256").update(source, "utf8").digest("hex"),
  };
}

function main(argv) {
  const text = `${JSON.stringify(compile(), null, 2)}\n`;
  if (argv.includes("--stdout")) {
    process.stdout.write(text);
  } else if (argv.includes("--check")) {
    const committed = fs.existsSync(ARTIFACT_PATH) ? fs.readFileSync(ARTIFACT_PATH, "utf8") : "";
    if (committed !== text) {
      console.error(`${path.basename(ARTIFACT_PATH)} is stale: run node contracts/build.js`);
      process.exit(1);
    }
  } else {
    fs.writeFileSync(ARTIFACT_PATH, text);
    console.log(`wrote ${ARTIFACT_PATH}`);
  }
}

main(process.argv.slice(2));
