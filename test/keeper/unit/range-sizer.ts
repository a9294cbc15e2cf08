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

  it("rejects inconsistent bounds", function () {
    expect(() => new RangeSizer(10, 5, 7)).to.throw("invalid range bounds");
  });
});
