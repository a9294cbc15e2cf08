import { expect } from "chai";
import { network } from "hardhat";

import { signPermit } from "../scripts/lib/permit.js";

const { ethers, networkHelpers } = await network.create();

describe("BillingToken", function () {
  async function deployTokenFixture() {
    const [owner, alice, bob] = await ethers.getSigners();
    const token = await ethers.deployContract("BillingToken", ["Billing USD", "bUSD", owner.address]);
    return { token, owner, alice, bob };
  }

  describe("deployment", function () {
    it("sets name, symbol, decimals and owner", async function () {
      const { token, owner } = await networkHelpers.loadFixture(deployTokenFixture);
      expect(await token.name()).to.equal("Billing USD");
      expect(await token.symbol()).to.equal("bUSD");
      expect(await token.decimals()).to.equal(18n);
      expect(await token.owner()).to.equal(owner.address);
      expect(await token.totalSupply()).to.equal(0n);
    });
  });

  describe("mint", function () {
    it("mints to the recipient when called by the owner", async function () {
      const { token, alice } = await networkHelpers.loadFixture(deployTokenFixture);
      await expect(token.mint(alice.address, 1000n))
        .to.emit(token, "Transfer")
        .withArgs(ethers.ZeroAddress, alice.address, 1000n);
      expect(await token.balanceOf(alice.address)).to.equal(1000n);
    });

    it("reverts with OwnableUnauthorizedAccount for anyone else", async function () {
      const { token, alice } = await networkHelpers.loadFixture(deployTokenFixture);
      await expect(token.connect(alice).mint(alice.address, 1n))
        .to.be.revertedWithCustomError(token, "OwnableUnauthorizedAccount")
        .withArgs(alice.address);
    });
  });

  describe("permit", function () {
    it("sets an allowance from an EIP-2612 signature and bumps the nonce", async function () {
      const { token, alice, bob } = await networkHelpers.loadFixture(deployTokenFixture);
      const deadline = BigInt(await networkHelpers.time.latest()) + 3600n;
      const sig = await signPermit(token, alice, bob.address, 500n, deadline);
      await token.connect(bob).permit(alice.address, bob.address, 500n, deadline, sig.v, sig.r, sig.s);
      expect(await token.allowance(alice.address, bob.address)).to.equal(500n);
      expect(await token.nonces(alice.address)).to.equal(1n);
    });

    it("reverts with ERC2612ExpiredSignature after the deadline", async function () {
      const { token, alice, bob } = await networkHelpers.loadFixture(deployTokenFixture);
      const deadline = BigInt(await networkHelpers.time.latest()) - 1n;
      const sig = await signPermit(token, alice, bob.address, 500n, deadline);
      await expect(token.permit(alice.address, bob.address, 500n, deadline, sig.v, sig.r, sig.s))
        .to.be.revertedWithCustomError(token, "ERC2612ExpiredSignature")
        .withArgs(deadline);
    });

    it("reverts with ERC2612InvalidSigner when the signature is replayed", async function () {
      const { token, alice, bob } = await networkHelpers.loadFixture(deployTokenFixture);
      const deadline = BigInt(await networkHelpers.time.latest()) + 3600n;
      const sig = await signPermit(token, alice, bob.address, 500n, deadline);
      await token.permit(alice.address, bob.address, 500n, deadline, sig.v, sig.r, sig.s);
      await expect(
        token.permit(alice.address, bob.address, 500n, deadline, sig.v, sig.r, sig.s),
      ).to.be.revertedWithCustomError(token, "ERC2612InvalidSigner");
    });
  });
});
