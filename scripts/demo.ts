import { network } from "hardhat";

import BillingTokenModule from "../deploy/modules/BillingToken.js";

const connection = await network.create();
const { token } = await connection.ignition.deploy(BillingTokenModule);
console.log(`BillingToken deployed at ${await token.getAddress()} on chain ${connection.networkName}`);
