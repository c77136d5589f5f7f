"""benchmarks.adapter_curve: the new-class benchmark teaches known classes only from spare test ids."""

from __future__ import annotations

from fashion_edge.benchmarks.adapter_curve import draw, spare_test_rows


def test_known_class_corrections_never_come_from_the_gate_or_the_anchors(tmp_path):
    splits = tmp_path / "splits.csv"
    rows = ["id,label,split"] + [f"{i},{'Shirts' if i % 2 else 'Watches'},test" for i in range(20)]
    rows += ["100,Shirts,train", "101,Shirts,val", "102,Jeans,test"]
    splits.write_text("\n".join(rows) + "\n")
    used = {"0", "1", "2", "3"}  # the gate's and the anchors' ids

    spare = spare_test_rows(splits, ["Shirts", "Watches"], used)

    assert {r["id"] for r in spare} == {str(i) for i in range(4, 20)}  # test split, known label, unused
    picked = [spare[i] for i in draw([r["label"] for r in spare], 3, 0, ["Shirts", "Watches"])]
    assert sorted(r["label"] for r in picked) == ["Shirts"] * 3 + ["Watches"] * 3
    assert not {r["id"] for r in picked} & used
