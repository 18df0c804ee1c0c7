"""Level C, part 2: models that members use and train without being able to read them (CKKS, TenSEAL).

Modules, one job each:

- `context`: CKKS parameters; the supervisor's secret context, the members' public one;
- `digits_net`: the HE-friendly digits network (conv → x² → linear) and its training;
- `digits_encrypted`: its slot layout, encryption and encrypted inference on plain images;
- `logreg`: breast-cancer data and plaintext logistic regression with a polynomial sigmoid;
- `logreg_encrypted`: encrypted predictions and training epochs, masks for refreshes;
- `resemblance`: does a decrypted result look like weights or increments;
- `authority`: the supervisor: checked, budgeted, journaled decryption; refreshes;
- `member`: a member's side (public context only);
- `validation`: the quality rule on scores decrypted under supervision.
"""
