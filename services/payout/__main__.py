from services.payout.bootstrap import main

main()
