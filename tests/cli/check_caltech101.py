#!/usr/bin/env python3
"""End-to-end test of the Caltech-101 experiment on its tiny setting (CTest: cli.caltech101_tiny).

    check_caltech101.py HCNN_CALTECH101 HCNN_CLASSIFY PLOT_SCRIPT DATA_DIR WORK_DIR

Runs `hcnn_caltech101 --tiny`, draws the pictures with the plot script, and checks that every
table row and every file is there, that the split is disjoint (no target class in pre-training,
no test image among the training images of its task) and that it is seeded: the same seed gives
the same split, another seed another one; the real 51/50-class split is checked the same way.
hcnn_classify then runs the saved [D,VD]+2CL checkpoint on a target test image.
"""
import csv
import os
import shutil
import subprocess
import sys

binary, classify, plot, data, work = sys.argv[1:6]
failures = []


def check(condition, message):
    if not condition:
        failures.append(message)


def run(*args):
    result = subprocess.run(list(args), capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.stdout


def read_split(folder):
    with open(os.path.join(folder, "split.csv"), newline="") as f:
        return list(csv.DictReader(f))


def check_split(rows, source_classes, target_classes, what):
    by_role = {}
    for row in rows:
        by_role.setdefault((row["task"], row["role"]), []).append(row)
    paths = [row["path"] for row in rows]
    check(len(paths) == len(set(paths)), f"{what}: an image appears in two roles")
    source = {row["class"] for row in rows if row["task"] == "source"}
    target = {row["class"] for row in rows if row["task"] == "target"}
    check(len(source) == source_classes, f"{what}: {len(source)} source classes, expected {source_classes}")
    check(len(target) == target_classes, f"{what}: {len(target)} target classes, expected {target_classes}")
    check(not source & target, f"{what}: classes in both tasks: {sorted(source & target)}")
    for row in rows:  # an image's folder is its class
        check(os.path.basename(os.path.dirname(row["path"])) == row["class"], f"{what}: {row['path']} labelled {row['class']}")
    for task, roles in (("source", ("pretrain", "test")), ("target", ("train", "test"))):
        for role in roles:
            check((task, role) in by_role, f"{what}: no {task} {role} images")
        labels = {row["class"]: row["label"] for row in rows if row["task"] == task}
        check(sorted(int(v) for v in set(labels.values())) == list(range(len(labels))),
              f"{what}: {task} labels are not 0..{len(labels) - 1}")
        train = {row["path"] for row in by_role.get((task, roles[0]), [])}
        test = {row["path"] for row in by_role.get((task, "test"), [])}
        check(not train & test, f"{what}: {task} test images among its training images")


shutil.rmtree(work, ignore_errors=True)
out = os.path.join(work, "tiny")
images = os.path.join(data, "caltech101", "images")
printed = run(binary, "--tiny", "--data", images, "--out", out)
run(sys.executable, plot, out)

tables = open(os.path.join(out, "tables.md")).read()
for row in ["D", "D'", "VD", "[D,D']+avg", "[D,VD]+avg", "[D,D']+2CL", "[D,VD]+2CL", "2CL fc-alpha 512",
            "2CL fc-alpha 640", "2CL fc-alpha 768", "3CL 512-768 (Fig. 5c)", "3CL 512-768 (Fig. 5d)", "softmax only",
            "softmax + fc-alpha", "into the bases' top layers", "whole network"]:
    check(f"| {row} |" in tables, f"tables.md has no row '{row}'")
    check(f"| {row} |" in printed, f"the output has no row '{row}'")
check("VD is " in tables, "tables.md does not say whether VD is stronger than D")

with open(os.path.join(out, "results.csv"), newline="") as f:
    results = list(csv.DictReader(f))
seeds = {(r["table"], r["row"], r["task"]): set() for r in results}
for r in results:
    seeds[(r["table"], r["row"], r["task"])].add(r["seed"])
    check(0.0 <= float(r["top1"]) <= float(r["top5"]) <= 1.0, f"results.csv: bad accuracies {r}")
for row in ["D", "D'", "VD", "[D,D']+avg", "[D,VD]+avg", "[D,D']+2CL", "[D,VD]+2CL"]:
    check(seeds.get(("table2", row, "target")) == {"1", "2"}, f"results.csv: table2 {row} target is not run for seeds 1, 2")
    check(("table2", row, "source") in seeds, f"results.csv: table2 {row} has no source-task accuracy")

for name in ["training_curves.png", "fig3.png", "fig4_tsne.png"]:
    path = os.path.join(out, name)
    check(os.path.exists(path) and open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n", f"{name}: not written as a PNG")
for name in ["fig3_homogeneous.csv", "fig3_heterogeneous.csv", "fig4_D.csv", "fig4_VD.csv", "fig4_joint.csv",
             "split.csv", "target_DVD_2CL.ckpt", "base_D.ckpt", "base_D2.ckpt", "base_VD.ckpt"]:
    check(os.path.getsize(os.path.join(out, name)) > 0, f"{name}: missing or empty")
with open(os.path.join(out, "fig3_heterogeneous.csv")) as f:
    header = f.readline().strip().split(",")
check(header == ["rank", "gradient_base0", "gradient_base1", "activation_base0", "activation_base1"],
      f"fig3_heterogeneous.csv: header {header}")
with open(os.path.join(out, "fig4_joint.csv")) as f:
    lines = f.read().splitlines()
check(len(lines) == 1 + 16 and len(lines[1].split(",")) == 513, "fig4_joint.csv: expected 16 test images x (label + 512)")

split_rows = read_split(out)
check_split(split_rows, 4, 4, "tiny split")
target_test = [row for row in split_rows if row["task"] == "target" and row["role"] == "test"]
answer = run(classify, "--checkpoint", os.path.join(out, "target_DVD_2CL.ckpt"), target_test[0]["path"])
check("hcnn_caltech101 [D,VD]+2CL" in answer, f"hcnn_classify does not name the model:\n{answer}")
target_names = {row["class"] for row in target_test}
check(any(f"  {name}" in answer for name in target_names), f"hcnn_classify prints no target class:\n{answer}")
again = os.path.join(work, "again")
other = os.path.join(work, "other")
run(binary, "--tiny", "--split-only", "--data", images, "--out", again)
run(binary, "--tiny", "--split-only", "--split-seed", "2", "--data", images, "--out", other)
check(read_split(again) == read_split(out), "the same seed gave another split")
check(read_split(other) != read_split(out), "another seed gave the same split")
full = os.path.join(work, "full")
run(binary, "--split-only", "--data", images, "--out", full)
full_rows = read_split(full)
check_split(full_rows, 51, 50, "the 51/50 split")
per_class = {}
for row in full_rows:
    if row["task"] == "target" and row["role"] == "train":
        per_class[row["class"]] = per_class.get(row["class"], 0) + 1
check(max(per_class.values()) == 30, "the target task does not train on 30 images per class")

if failures:
    sys.exit("\n".join(failures))
print("caltech101 tiny experiment: every row, file and split check passed")
