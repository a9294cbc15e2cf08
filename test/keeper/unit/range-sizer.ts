import { expect } from "chai";

import { RangeSizer } from "../../../keeper/src/sync/range-sizer.js";

describe("Keeper RangeSizer", function () {
  it("halves on shrink and stops at the minimum", function () {
    const sizer = new RangeSizer(100, 10_000, 1000);
    expect(sizer.shrink()).to.equal(true);
    expect(sizer.size).to.equal(500);
    sizer.shrink();
    sizer.shrink();
    sizer.shrink();
    expect(sizer.size).to.equal(100);
    expect(sizer.shrink()).to.equal(false);
  });

  it("jumps to a smaller range the provider suggested", function () {
    const sizer = new RangeSizer(1, 10_000, 2000);
    sizer.shrink(300);
    expect(sizer.size).to.equal(300);
  });

  it("ignores a suggestion that is not smaller", function () {
    const sizer = new RangeSizer(1, 10_000, 2000);
    sizer.shrink(5000);
    expect(sizer.size).to.equal(1000);
  });

  it("doubles on success up to the maximum", function () {
    const sizer = new RangeSizer(1, 3000, 1000);
    sizer.grow();
    expect(sizer.size).to.equal(2000);
    sizer.grow();
    expect(sizer.size).to.equal(3000);
  });

  it("grows back to three quarters of a refused size, not to the refused size", function () {
    const sizer = new RangeSizer(1, 10_000, 28);
    sizer.shrink();
    expect(sizer.size).to.equal(14);
    sizer.grow();
    expect(sizer.size).to.equal(21);
    sizer.grow();
    expect(sizer.size).to.equal(21);
  });

  it("tries a refused size again after many successes", function () {
    const sizer = new RangeSizer(1, 10_000, 28);
    sizer.shrink();
    for (let i = 0; i < 63; i++) sizer.grow();
    expect(sizer.size).to.equal(21);
    sizer.grow();
    expect(sizer.size).to.equal(42);
  });

  it("keeps the logs of a range near the target, shrinking after a dense range", function () {
    const sizer = new RangeSizer(1, 10_000, 1000, 5000);
    sizer.grow(20_000);
    expect(sizer.size).to.equal(250);
    sizer.grow(100);
    expect(sizer.size).to.equal(500);
  });

  it("caps growth by the densest block seen, growing back as that density decays over sparse ranges", function () {
    const sizer = new RangeSizer(1, 10_000, 10, 5000);
    // 10 blocks with 1,000 logs, 500 of them in one block: no more than 10 such blocks per range.
    sizer.grow(1000, 500);
    expect(sizer.size).to.equal(10);
    // Sparse ranges: the range grows again, but slower than doubling while the dense block is remembered.
    const sizes: number[] = [];
    for (let i = 0; i < 80; i++) {
      sizer.grow(0, 0);
      sizes.push(sizer.size);
    }
    expect(sizes[0]).to.equal(11);
    expect(sizes.every((size, i) => i === 0 || size >= sizes[i - 1])).to.equal(true);
    expect(sizes.at(-1)).to.equal(10_000);
  });

  it("sizes the next range to the target after an answer far above it", function () {
    const sizer = new RangeSizer(1, 10_000, 2000, 10_000);
    expect(sizer.tooDense(80_000, 700)).to.equal(true);
    expect(sizer.size).to.equal(250);
    sizer.grow(9000, 700);
    // The densest block (700 logs) allows 14 blocks per range.
    expect(sizer.size).to.equal(14);
    const single = new RangeSizer(1, 10, 1, 10);
    expect(single.tooDense(1000, 1000)).to.equal(false);
  });

  it("rejects inconsistent bounds", function () {
    expect(() => new RangeSizer(10, 5, 7)).to.throw("invalid range bounds");
  });
});
